package dev.anvil.collective;

import static dev.anvil.collective.AllReduceTest.F32;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Reduce-scatter and all-gather as collectives of their own: shard ownership, and their composition is all-reduce. */
@Timeout(60)
class ShardedCollectivesTest {
    private static final ValueLayout.OfShort BF16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Each transport with each element type, at sizes of many slices and of a few elements. */
    @ParameterizedTest(name = "{0} ranks, {1} elements, {2}, {3}, over {4}")
    @CsvSource({
        "2, 1, FLOAT32, SUM, TCP", "2, 1000003, FLOAT32, MEAN, SHM", "3, 5, FLOAT32, SUM, SHM",
        "3, 300007, BFLOAT16, MEAN, TCP", "4, 3, BFLOAT16, SUM, TCP", "4, 262147, FLOAT32, SUM, TCP",
        "4, 262147, FLOAT32, MEAN, SHM", "4, 262147, BFLOAT16, MEAN, SHM"
    })
    void reduceScatterThenAllGatherIsAllReduceBitForBit(int ranks, int elements, ElementType type, ReduceOp op,
            DataTransport transport) {
        CommunicatorOptions options = AllReduceTest.testOptions().withDataTransport(transport);
        try (LocalCluster cluster = LocalCluster.start(ranks, options)) {
            List<MemorySegment> sharded = new ArrayList<>();
            List<MemorySegment> whole = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                MemorySegment b = random(type, elements, 100 + r);
                sharded.add(b);
                whole.add(Arena.ofAuto().allocate(b.byteSize()).copyFrom(b));
            }
            awaitAll(ranks, r -> cluster.rank(r).reduceScatterAsync(sharded.get(r), type, op));
            double[] expected = reference(whole, type, op);
            for (int r = 0; r < ranks; r++) {
                long from = Shards.start(elements, ranks, r);
                long to = Shards.start(elements, ranks, r + 1);
                for (long i = from; i < to; i++) {
                    // Each element is a sum of `ranks` values; compare against float64 within the type's rounding.
                    double got = get(sharded.get(r), type, i);
                    double tolerance = (type == ElementType.FLOAT32 ? 1e-6 : 2e-2) * (1 + Math.abs(expected[(int) i]));
                    assertEquals(expected[(int) i], got, tolerance, "rank " + r + " element " + i);
                }
            }
            awaitAll(ranks, r -> cluster.rank(r).allGatherAsync(sharded.get(r), type));
            awaitAll(ranks, r -> cluster.rank(r).allReduceAsync(whole.get(r), type, op));
            for (int r = 0; r < ranks; r++) {
                assertEquals(-1, whole.get(0).mismatch(sharded.get(r)),
                        "rank " + r + ": reduce-scatter + all-gather differs from all-reduce");
            }
        }
    }

    @Test
    void allGatherCollectsEachRanksShardAndIgnoresTheRest() {
        int ranks = 3;
        int elements = 100_001;
        try (LocalCluster cluster = LocalCluster.start(ranks, AllReduceTest.testOptions())) {
            List<MemorySegment> bufs = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                MemorySegment b = Arena.ofAuto().allocate(4L * elements);
                for (long i = 0; i < elements; i++) {
                    boolean mine = i >= Shards.start(elements, ranks, r) && i < Shards.start(elements, ranks, r + 1);
                    b.setAtIndex(F32, i, mine ? i * 0.5f : -1f - r);
                }
                bufs.add(b);
            }
            awaitAll(ranks, r -> cluster.rank(r).allGatherAsync(bufs.get(r), ElementType.FLOAT32));
            for (int r = 0; r < ranks; r++) {
                for (long i = 0; i < elements; i++) {
                    assertEquals(i * 0.5f, bufs.get(r).getAtIndex(F32, i), "rank " + r + " element " + i);
                }
            }
        }
    }

    @Test
    void shardsCoverTheBufferInRankOrder() {
        assertEquals(0, Shards.start(10, 4, 0));
        assertEquals(2, Shards.start(10, 4, 1));
        assertEquals(5, Shards.start(10, 4, 2));
        assertEquals(7, Shards.start(10, 4, 3));
        assertEquals(10, Shards.start(10, 4, 4));
        assertEquals(3, Shards.length(10, 4, 3));
    }

    private interface Issue {
        CompletableFuture<Void> on(int rank);
    }

    private static void awaitAll(int ranks, Issue issue) {
        List<CompletableFuture<Void>> fs = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            fs.add(issue.on(r));
        }
        fs.forEach(Communicator::await);
    }

    private static MemorySegment random(ElementType type, int elements, long seed) {
        Random rnd = new Random(seed);
        MemorySegment b = Arena.ofAuto().allocate((long) type.byteSize() * elements);
        for (long i = 0; i < elements; i++) {
            float v = (float) rnd.nextGaussian();
            if (type == ElementType.FLOAT32) {
                b.setAtIndex(F32, i, v);
            } else {
                b.setAtIndex(BF16, i, (short) (Float.floatToRawIntBits(v) >>> 16));
            }
        }
        return b;
    }

    private static double get(MemorySegment b, ElementType type, long i) {
        return type == ElementType.FLOAT32 ? b.getAtIndex(F32, i)
                : Float.intBitsToFloat(b.getAtIndex(BF16, i) << 16);
    }

    private static double[] reference(List<MemorySegment> bufs, ElementType type, ReduceOp op) {
        int n = (int) (bufs.get(0).byteSize() / type.byteSize());
        double[] sum = new double[n];
        for (MemorySegment b : bufs) {
            for (int i = 0; i < n; i++) {
                sum[i] += get(b, type, i);
            }
        }
        if (op == ReduceOp.MEAN) {
            for (int i = 0; i < n; i++) {
                sum[i] /= bufs.size();
            }
        }
        return sum;
    }
}
