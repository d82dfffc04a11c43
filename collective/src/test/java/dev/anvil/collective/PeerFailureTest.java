package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Failures are diagnosed the same way whether the data goes over TCP or shared memory. */
@Timeout(60)
class PeerFailureTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(3);

    private static CommunicatorOptions options(DataTransport transport) {
        return AllReduceTest.testOptions().withTimeouts(TIMEOUT, Duration.ofSeconds(20))
                .withDataTransport(transport);
    }

    @ParameterizedTest
    @EnumSource(value = DataTransport.class, names = {"TCP", "SHM"})
    void rankClosingAbruptlyMidAllReduceFailsEveryOtherRankNamingIt(DataTransport transport) throws Exception {
        try (LocalCluster cluster = LocalCluster.start(4, options(transport))) {
            int dead = 2;
            String deadAddress = ":" + ((NettyCommunicator) cluster.rank(dead)).dataPort();
            List<CompletableFuture<Void>> pending = new ArrayList<>();
            for (int r = 0; r < 4; r++) {
                if (r != dead) {
                    MemorySegment buf = Arena.ofAuto().allocate(4L << 22);
                    pending.add(cluster.rank(r).allReduceAsync(buf, ElementType.FLOAT32, ReduceOp.SUM));
                }
            }
            Thread.sleep(200);
            long start = System.nanoTime();
            cluster.rank(dead).close();
            for (CompletableFuture<Void> f : pending) {
                PeerLostException e = assertThrows(PeerLostException.class, () -> Communicator.await(f));
                assertEquals(dead, e.lostRank(), e.getMessage());
                assertTrue(e.lostAddress().endsWith(deadAddress), e.getMessage());
            }
            assertTrue(System.nanoTime() - start < TIMEOUT.toNanos(), "failure took longer than the peer timeout");
            // Later calls fail at once, with the same diagnosis.
            PeerLostException later = assertThrows(PeerLostException.class, () -> cluster.rank(0)
                    .allReduce(Arena.ofAuto().allocate(4), ElementType.FLOAT32, ReduceOp.SUM));
            assertEquals(dead, later.lostRank());
        }
    }

    @ParameterizedTest
    @EnumSource(value = DataTransport.class, names = {"TCP", "SHM"})
    void rankThatNeverIssuesTheCollectiveFailsTheOthersAfterThePeerTimeout(DataTransport transport) {
        try (LocalCluster cluster = LocalCluster.start(2, options(transport))) {
            long start = System.nanoTime();
            PeerLostException e = assertThrows(PeerLostException.class, () -> cluster.rank(0)
                    .allReduce(Arena.ofAuto().allocate(4096), ElementType.FLOAT32, ReduceOp.SUM));
            long waited = System.nanoTime() - start;
            assertEquals(1, e.lostRank(), e.getMessage());
            assertTrue(e.getMessage().contains("no progress"), e.getMessage());
            assertTrue(waited >= TIMEOUT.toNanos() && waited < 2 * TIMEOUT.toNanos(), "waited " + waited + " ns");
            // The other rank hears about it through the abort instead of hanging in its next call.
            assertThrows(PeerLostException.class, () -> cluster.rank(1)
                    .allReduce(Arena.ofAuto().allocate(4096), ElementType.FLOAT32, ReduceOp.SUM));
        }
    }

    @ParameterizedTest
    @EnumSource(value = DataTransport.class, names = {"TCP", "SHM"})
    void mismatchedCollectivesAreDiagnosedInsteadOfCorruptingBuffers(DataTransport transport) {
        try (LocalCluster cluster = LocalCluster.start(2, options(transport))) {
            var a = cluster.rank(0).allReduceAsync(Arena.ofAuto().allocate(4000), ElementType.FLOAT32, ReduceOp.SUM);
            var b = cluster.rank(1).allReduceAsync(Arena.ofAuto().allocate(2000), ElementType.BFLOAT16, ReduceOp.SUM);
            for (var f : List.of(a, b)) {
                CollectiveException e = assertThrows(CollectiveException.class, () -> Communicator.await(f));
                assertTrue(e.getMessage().contains("collective mismatch"), e.getMessage());
            }
        }
    }
}
