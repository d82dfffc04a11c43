package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.ring.Reduction;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(60)
class AllReduceTest {
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final int[] SIZES = {1, 7, 1000, 1 << 20};

    static CommunicatorOptions testOptions() {
        return CommunicatorOptions.defaults(JobToken.random())
                .withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(20))
                .withSliceBytes(64 * 1024);
    }

    @ParameterizedTest(name = "{0} ranks")
    @ValueSource(ints = {1, 2, 3, 4})
    void sumAndMeanMatchFloat64ReferenceAndAreBitIdenticalAcrossRanks(int ranks) throws Exception {
        try (LocalCluster cluster = LocalCluster.start(ranks, testOptions())) {
            for (ElementType type : ElementType.values()) {
                for (ReduceOp op : ReduceOp.values()) {
                    for (int n : SIZES) {
                        checkAllReduce(cluster, type, op, n, new Random(31L * n + ranks));
                    }
                }
            }
        }
    }

    static void checkAllReduce(LocalCluster cluster, ElementType type, ReduceOp op, int n, Random rnd)
            throws Exception {
        int ranks = cluster.worldSize();
        double[] reference = new double[n];
        double[] magnitude = new double[n];
        List<MemorySegment> bufs = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            MemorySegment buf = Arena.ofAuto().allocate((long) n * type.byteSize());
            for (int i = 0; i < n; i++) {
                float x = rnd.nextFloat() * 2 - 1;
                if (type == ElementType.FLOAT32) {
                    buf.setAtIndex(F32, i, x);
                } else {
                    short bits = Reduction.narrow(x);
                    buf.setAtIndex(BF16, i, bits);
                    x = Reduction.widen(bits);
                }
                reference[i] += x;
                magnitude[i] += Math.abs(x);
            }
            bufs.add(buf);
        }
        List<CompletableFuture<Void>> futures = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            futures.add(cluster.rank(r).allReduceAsync(bufs.get(r), type, op));
        }
        for (CompletableFuture<Void> f : futures) {
            Communicator.await(f);
        }
        double eps = type == ElementType.FLOAT32 ? Math.ulp(1.0f) : 1.0 / 128;
        double divisor = op == ReduceOp.MEAN ? ranks : 1;
        MemorySegment first = bufs.getFirst();
        for (int i = 0; i < n; i++) {
            double got = type == ElementType.FLOAT32 ? first.getAtIndex(F32, i)
                    : Reduction.widen(first.getAtIndex(BF16, i));
            double want = reference[i] / divisor;
            double tolerance = ranks * eps * magnitude[i] / divisor + 1e-30;
            if (Math.abs(got - want) > tolerance) {
                throw new AssertionError(type + " " + op + " n=" + n + " R=" + ranks + " element " + i + ": got "
                        + got + ", want " + want + " within " + tolerance);
            }
        }
        for (int r = 1; r < ranks; r++) {
            assertEquals(-1, first.mismatch(bufs.get(r)), "rank " + r + " differs from rank 0 (" + type + " " + op
                    + " n=" + n + ")");
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        // 1 + 2^-8 lies exactly between two bf16 values: ties go to the even mantissa (1.0).
        assertEquals(1.0f, Reduction.widen(Reduction.narrow(1.0f + 0x1p-8f)));
        // 1 + 3 * 2^-8 ties between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        assertEquals(1.0f + 0x1p-6f, Reduction.widen(Reduction.narrow(1.0f + 3 * 0x1p-8f)));
        assertTrue(Float.isNaN(Reduction.widen(Reduction.narrow(Float.NaN))));
        assertEquals(Float.POSITIVE_INFINITY, Reduction.widen(Reduction.narrow(Float.POSITIVE_INFINITY)));
    }
}
