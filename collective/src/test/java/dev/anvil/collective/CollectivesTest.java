package dev.anvil.collective;

import static dev.anvil.collective.AllReduceTest.F32;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class CollectivesTest {

    @Test
    void asyncAllReducesOverlapAndCompleteInIssueOrder() throws Exception {
        int ranks = 3;
        int ops = 8;
        try (LocalCluster cluster = LocalCluster.start(ranks, AllReduceTest.testOptions())) {
            List<List<Integer>> order = new ArrayList<>();
            List<List<MemorySegment>> bufs = new ArrayList<>();
            List<List<CompletableFuture<Void>>> futures = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                List<Integer> done = Collections.synchronizedList(new ArrayList<>());
                List<MemorySegment> mine = new ArrayList<>();
                List<CompletableFuture<Void>> issued = new ArrayList<>();
                for (int k = 0; k < ops; k++) {
                    // Big buckets first, so later small ones would finish first if order were not enforced.
                    int n = k % 2 == 0 ? (1 << 18) + k : 3 + k;
                    MemorySegment buf = Arena.ofAuto().allocate(4L * n);
                    for (int i = 0; i < n; i++) {
                        buf.setAtIndex(F32, i, r + k);
                    }
                    int id = k;
                    issued.add(cluster.rank(r).allReduceAsync(buf, ElementType.FLOAT32, ReduceOp.SUM)
                            .thenRun(() -> done.add(id)));
                    mine.add(buf);
                }
                order.add(done);
                bufs.add(mine);
                futures.add(issued);
            }
            assertFalse(futures.get(0).get(ops - 1).isDone(), "the last op cannot be done before waiting");
            for (List<CompletableFuture<Void>> fs : futures) {
                fs.forEach(Communicator::await);
            }
            for (int r = 0; r < ranks; r++) {
                assertEquals(List.of(0, 1, 2, 3, 4, 5, 6, 7), order.get(r), "completion order on rank " + r);
                for (int k = 0; k < ops; k++) {
                    MemorySegment b = bufs.get(r).get(k);
                    float want = 3 * k + (0 + 1 + 2);
                    for (long i = 0; i < b.byteSize() / 4; i++) {
                        assertEquals(want, b.getAtIndex(F32, i), "rank " + r + " op " + k + " element " + i);
                    }
                }
            }
        }
    }

    @Test
    void broadcastCopiesTheRootsBytesToEveryRank() {
        int ranks = 3;
        try (LocalCluster cluster = LocalCluster.start(ranks, AllReduceTest.testOptions())) {
            Random rnd = new Random(7);
            for (int size : new int[] {1, 7, (1 << 20) + 3}) {
                for (int root = 0; root < ranks; root++) {
                    List<MemorySegment> bufs = new ArrayList<>();
                    List<CompletableFuture<Void>> fs = new ArrayList<>();
                    byte[] expected = new byte[size];
                    rnd.nextBytes(expected);
                    for (int r = 0; r < ranks; r++) {
                        MemorySegment b = Arena.ofAuto().allocate(size);
                        if (r == root) {
                            MemorySegment.copy(MemorySegment.ofArray(expected), 0, b, 0, size);
                        } else {
                            b.fill((byte) r);
                        }
                        bufs.add(b);
                        fs.add(cluster.rank(r).broadcastAsync(b, root));
                    }
                    fs.forEach(Communicator::await);
                    for (int r = 0; r < ranks; r++) {
                        assertEquals(-1, MemorySegment.ofArray(expected).mismatch(bufs.get(r)),
                                "rank " + r + " size " + size + " root " + root);
                    }
                }
            }
        }
    }

    @Test
    void barrierReleasesNoRankBeforeTheLastArrives() throws Exception {
        int ranks = 3;
        try (LocalCluster cluster = LocalCluster.start(ranks, AllReduceTest.testOptions());
                ExecutorService pool = Executors.newFixedThreadPool(ranks)) {
            long start = System.nanoTime();
            List<Future<Long>> passed = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                int rank = r;
                passed.add(pool.submit(() -> {
                    Thread.sleep(rank == 2 ? 500 : 0);
                    cluster.rank(rank).barrier();
                    return System.nanoTime() - start;
                }));
            }
            for (Future<Long> f : passed) {
                assertTrue(f.get() >= 500_000_000L, "a rank left the barrier before the slowest rank entered it");
            }
        }
    }

    @Test
    void worldSizeOneIsANoOp() {
        try (LocalCluster cluster = LocalCluster.start(1)) {
            MemorySegment b = Arena.ofAuto().allocate(12);
            b.setAtIndex(F32, 1, 2.5f);
            cluster.rank(0).allReduce(b, ElementType.FLOAT32, ReduceOp.MEAN);
            cluster.rank(0).broadcast(b, 0);
            cluster.rank(0).barrier();
            assertEquals(2.5f, b.getAtIndex(F32, 1));
        }
    }

    @Test
    void buffersFromConfinedArenasAreRejectedWithAHint() {
        try (LocalCluster cluster = LocalCluster.start(2, AllReduceTest.testOptions());
                Arena confined = Arena.ofConfined()) {
            MemorySegment b = confined.allocate(16);
            var e = assertThrows(IllegalArgumentException.class,
                    () -> cluster.rank(0).allReduceAsync(b, ElementType.FLOAT32, ReduceOp.SUM));
            assertTrue(e.getMessage().contains("Arena.ofShared()"), e.getMessage());
        }
    }
}
