package dev.anvil.collective;

/**
 * A rank died, hung, disconnected or aborted: the ring is broken and this communicator fails every pending and
 * future collective. Names the lost rank and its address so the operator knows which process to look at.
 */
public final class PeerLostException extends CollectiveException {
    private static final long serialVersionUID = 1L;

    private final int lostRank;
    private final String lostAddress;
    private final String reason;

    /**
     * @param lostRank the rank that was lost, or -1 when unknown
     * @param lostAddress its host:port, or "unknown"
     * @param reason what was observed
     */
    public PeerLostException(int lostRank, String lostAddress, String reason) {
        super("lost rank " + lostRank + " (" + lostAddress + "): " + reason);
        this.lostRank = lostRank;
        this.lostAddress = lostAddress;
        this.reason = reason;
    }

    /** The lost rank, or -1 when unknown. */
    public int lostRank() {
        return lostRank;
    }

    /** The lost rank's data address as host:port, or "unknown". */
    public String lostAddress() {
        return lostAddress;
    }

    /** What was observed, without the rank prefix. */
    public String reason() {
        return reason;
    }
}
