package dev.anvil.collective.link;

/** What a data link's thread needs to know from its ring. */
public interface LinkControl {
    /** Whether the ring is stopping: a link leaves any wait with a {@link LinkException.Kind#STOPPED} exception. */
    boolean stopping();
}
