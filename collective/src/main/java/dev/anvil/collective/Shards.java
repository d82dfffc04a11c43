package dev.anvil.collective;

/**
 * Which part of a buffer each rank owns in {@link Communicator#reduceScatterAsync} and
 * {@link Communicator#allGatherAsync}: rank {@code r} of {@code R} owns elements
 * {@code [start(n, R, r), start(n, R, r + 1))} of a buffer of {@code n} elements. Shards are contiguous, in rank order,
 * and differ in length by at most one element; a caller that wants aligned shards pads {@code n} to a multiple of
 * {@code R} times the alignment.
 */
public final class Shards {
    private Shards() {
    }

    /**
     * First element of shard {@code shard}; {@code start(n, ranks, ranks) == n}.
     *
     * @param elements buffer length in elements
     * @param ranks number of shards
     * @param shard shard index in {@code [0, ranks]}
     */
    public static long start(long elements, int ranks, int shard) {
        return Math.multiplyExact(elements, shard) / ranks;
    }

    /** Length in elements of shard {@code shard}. */
    public static long length(long elements, int ranks, int shard) {
        return start(elements, ranks, shard + 1) - start(elements, ranks, shard);
    }
}
