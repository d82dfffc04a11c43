package dev.anvil.collective;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** The CPU backend's buffers are float arrays: collectives must work on segments over them. */
class HeapSegmentTest {

    @Test
    void allReduceAndBroadcastWorkOnFloatArraySegments() throws Exception {
        int n = 100_003;
        try (LocalCluster cluster = LocalCluster.start(2)) {
            float[][] data = new float[2][n];
            for (int r = 0; r < 2; r++) {
                for (int i = 0; i < n; i++) {
                    data[r][i] = r + i * 0.5f;
                }
            }
            List<CompletableFuture<Void>> done = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                done.add(CompletableFuture.runAsync(() -> {
                    Communicator c = cluster.rank(rank);
                    c.allReduce(MemorySegment.ofArray(data[rank]), ElementType.FLOAT32, ReduceOp.SUM);
                    c.broadcast(MemorySegment.ofArray(data[rank]).asSlice(0, 40), 1);
                }));
            }
            for (CompletableFuture<Void> f : done) {
                f.get(60, TimeUnit.SECONDS);
            }
            float[] expected = new float[n];
            for (int i = 0; i < n; i++) {
                expected[i] = 1 + i * 1f;
            }
            assertArrayEquals(expected, data[0]);
            assertArrayEquals(expected, data[1]);
        }
    }
}
