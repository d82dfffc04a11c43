package dev.anvil.collective.link;

import java.io.IOException;

/**
 * Why a data link stopped: the neighbour closed it, fell silent, or reported a lost rank, or this rank's ring is
 * stopping. The message describes the neighbour's behaviour ("connection closed", "sent nothing for 3000 ms").
 */
public final class LinkException extends IOException {
    /** What happened. */
    public enum Kind {
        /** The connection closed or was reset. */
        CLOSED,
        /** Nothing at all arrived for the peer timeout. */
        SILENT,
        /** The neighbour reported that the ring broke; {@link #lostRank} says which rank it blames. */
        ABORTED,
        /** This rank's ring is stopping (failure elsewhere or close): not the neighbour's fault. */
        STOPPED
    }

    private final Kind kind;
    private final int lostRank;

    public LinkException(Kind kind, String message) {
        this(kind, -1, message);
    }

    public LinkException(Kind kind, int lostRank, String message) {
        super(message);
        this.kind = kind;
        this.lostRank = lostRank;
    }

    public Kind kind() {
        return kind;
    }

    /** For {@link Kind#ABORTED}: the rank the neighbour reported lost, or -1 when unknown. */
    public int lostRank() {
        return lostRank;
    }
}
