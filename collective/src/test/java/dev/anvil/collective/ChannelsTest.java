package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Transports, channels and slices only decide how the work travels: every element is reduced in the same order
 * whatever the transport, channel count and slice size, so results are bit for bit the same, and reduce-scatter
 * shards stay where they were.
 */
@Timeout(60)
class ChannelsTest {
    private static final int RANKS = 3;
    private static final int ELEMENTS = 200_003;

    @ParameterizedTest
    @EnumSource(ElementType.class)
    void resultsDoNotDependOnTheTransportTheChannelCountOrTheSliceSize(ElementType type) {
        List<MemorySegment> tcp = run(DataTransport.TCP, 1, 64 * 1024, type, false);
        List<MemorySegment> shm = run(DataTransport.SHM, 3, 4096, type, false);
        for (int r = 0; r < RANKS; r++) {
            assertEquals(-1, tcp.get(0).mismatch(shm.get(r)),
                    "rank " + r + " over shared memory with 3 channels differs from TCP with 1 channel");
        }
    }

    @ParameterizedTest
    @EnumSource(ElementType.class)
    void reduceScatterShardsDoNotMoveWithChannels(ElementType type) {
        List<MemorySegment> oneChannel = run(DataTransport.SHM, 1, 64 * 1024, type, true);
        List<MemorySegment> fourChannels = run(DataTransport.TCP, 4, 8192, type, true);
        long bytes = type.byteSize();
        for (int r = 0; r < RANKS; r++) {
            long from = Shards.start(ELEMENTS, RANKS, r) * bytes;
            long to = Shards.start(ELEMENTS, RANKS, r + 1) * bytes;
            assertEquals(-1, oneChannel.get(r).asSlice(from, to - from)
                    .mismatch(fourChannels.get(r).asSlice(from, to - from)), "shard of rank " + r);
        }
    }

    /** Every rank's buffer after a MEAN all-reduce (or reduce-scatter) of the same random data. */
    private static List<MemorySegment> run(DataTransport transport, int channels, int sliceBytes, ElementType type,
            boolean scatter) {
        CommunicatorOptions options = AllReduceTest.testOptions().withChannels(channels).withSliceBytes(sliceBytes)
                .withDataTransport(transport);
        try (LocalCluster cluster = LocalCluster.start(RANKS, options)) {
            List<MemorySegment> bufs = new ArrayList<>();
            List<CompletableFuture<Void>> pending = new ArrayList<>();
            for (int r = 0; r < RANKS; r++) {
                MemorySegment b = random(type, 1000 + r);
                bufs.add(b);
                pending.add(scatter ? cluster.rank(r).reduceScatterAsync(b, type, ReduceOp.MEAN)
                        : cluster.rank(r).allReduceAsync(b, type, ReduceOp.MEAN));
            }
            pending.forEach(Communicator::await);
            return bufs;
        }
    }

    private static MemorySegment random(ElementType type, long seed) {
        Random rnd = new Random(seed);
        MemorySegment b = Arena.ofAuto().allocate((long) type.byteSize() * ELEMENTS);
        for (long i = 0; i < ELEMENTS; i++) {
            float v = (float) rnd.nextGaussian() * (1 << rnd.nextInt(10));
            if (type == ElementType.FLOAT32) {
                b.setAtIndex(AllReduceTest.F32, i, v);
            } else {
                b.setAtIndex(AllReduceTest.BF16, i, (short) (Float.floatToRawIntBits(v) >>> 16));
            }
        }
        return b;
    }
}
