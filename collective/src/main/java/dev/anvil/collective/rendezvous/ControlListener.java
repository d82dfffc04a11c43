package dev.anvil.collective.rendezvous;

/** What a rank hears from the coordinator after the rendezvous. */
public interface ControlListener {
    /** Another rank failed (reported by a rank, or its coordinator connection dropped). */
    void onAbort(int lostRank, String reason);

    /** The coordinator connection itself dropped or went silent: rank 0 is gone. */
    void onCoordinatorLost(String reason);
}
