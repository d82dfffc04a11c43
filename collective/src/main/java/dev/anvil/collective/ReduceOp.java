package dev.anvil.collective;

/** How all-reduce combines the ranks' buffers. */
public enum ReduceOp {
    /** Element-wise sum over ranks. */
    SUM,
    /** Element-wise sum over ranks divided by the world size (once, by the rank owning each segment). */
    MEAN
}
