package dev.anvil.engine.zero;

import dev.anvil.collective.Shards;
import dev.anvil.engine.optim.ParameterShard;
import dev.anvil.engine.parallel.GradientBuckets.Bucket;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Which elements of the parameter buffer each rank's optimizer owns: rank {@code r} of {@code R}
 * owns the collective's shard {@code r} ({@link Shards}) of every gradient bucket, so the
 * reduce-scatter of a bucket leaves each rank exactly the mean gradients it updates, and the
 * all-gather of the bucket sends each rank's updated parameters to the others.
 *
 * <p>The shards follow the contiguous parameter buffer, cut at the collective's slice boundaries.
 * Owning a contiguous 1/R of the whole buffer instead would need a bucket to reach several owners
 * in uneven pieces, which an equal-shard reduce-scatter cannot do, or one bucket for the whole
 * buffer, which would not overlap the backward pass. The plan is a pure function of the bucket
 * layout and {@code R}; a checkpoint records every run's place in the buffer, so another plan (other
 * {@code R}, other buckets) can read it back.
 */
public final class ShardPlan {

    private final List<Bucket> buckets;
    private final int rank;
    private final int ranks;
    private final ParameterShard shard;

    /**
     * @param buckets the gradient buckets, in the order the backward pass finishes them
     * @param rank    this rank
     * @param ranks   the number of ranks
     */
    public ShardPlan(List<Bucket> buckets, int rank, int ranks) {
        if (ranks < 1 || rank < 0 || rank >= ranks) {
            throw new IllegalArgumentException("rank " + rank + " is outside [0, " + ranks + ")");
        }
        this.buckets = List.copyOf(buckets);
        this.rank = rank;
        this.ranks = ranks;
        List<long[]> owned = new ArrayList<>();
        for (Bucket b : buckets) {
            owned.add(new long[] {b.offset() + Shards.start(b.length(), ranks, rank), Shards.length(b.length(), ranks, rank)});
        }
        owned.sort(Comparator.comparingLong(r -> r[0]));
        this.shard = ParameterShard.of(owned);
    }

    /** The gradient buckets, in the order the backward pass finishes them. */
    public List<Bucket> buckets() {
        return buckets;
    }

    public int rank() {
        return rank;
    }

    public int ranks() {
        return ranks;
    }

    /** This rank's elements. */
    public ParameterShard shard() {
        return shard;
    }

    /** First element of this rank's shard of {@code bucket}, in the parameter buffer. */
    public long shardStart(Bucket bucket) {
        return bucket.offset() + Shards.start(bucket.length(), ranks, rank);
    }

    /** Length of this rank's shard of {@code bucket}. */
    public long shardLength(Bucket bucket) {
        return Shards.length(bucket.length(), ranks, rank);
    }
}
