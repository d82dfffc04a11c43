package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Which transport the ranks of one host use, and what is left in /dev/shm. */
@Timeout(60)
class TransportChoiceTest {

    @Test
    void ranksOnOneHostShareMemoryByDefaultAndLeaveNoFileInDevShm() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(3, AllReduceTest.testOptions().withChannels(2))) {
            for (Communicator c : cluster.ranks()) {
                assertEquals(List.of("shm", "shm"), ((NettyCommunicator) c).dataLinks());
            }
            // Every FIFO is mapped by both of its ranks by now, so its file is already unlinked.
            assertEquals(List.of(), ourSegments());
            AllReduceTest.checkAllReduce(cluster, ElementType.FLOAT32, ReduceOp.SUM, 100_000, new java.util.Random(3));
        }
        assertEquals(List.of(), ourSegments());
    }

    @Test
    void tcpIsUsedWhenAskedFor() {
        try (LocalCluster cluster = LocalCluster.start(2, AllReduceTest.testOptions()
                .withDataTransport(DataTransport.TCP))) {
            assertEquals(List.of("tcp"), ((NettyCommunicator) cluster.rank(0)).dataLinks());
        }
    }

    @Test
    void ranksDemandingSharedMemoryAndTcpAreRefusedNamingTheOption() throws Exception {
        JobToken token = JobToken.random();
        int port = LocalCluster.freePort();
        CommunicatorOptions options = CommunicatorOptions.defaults(token).withHost("127.0.0.1")
                .withTimeouts(Duration.ofSeconds(3), Duration.ofSeconds(8));
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<Communicator> shm = pool.submit(() -> NettyCommunicator.connect(
                    RendezvousConfig.of("127.0.0.1", port, 0, 2), options.withDataTransport(DataTransport.SHM)));
            Future<Communicator> tcp = pool.submit(() -> NettyCommunicator.connect(
                    RendezvousConfig.of("127.0.0.1", port, 1, 2), options.withDataTransport(DataTransport.TCP)));
            for (Future<Communicator> f : List.of(shm, tcp)) {
                ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(20, TimeUnit.SECONDS));
                assertTrue(e.getCause().getMessage().contains("--transport tcp but rank")
                        || e.getCause().getMessage().contains("--transport shm but rank"), e.getCause().getMessage());
                assertTrue(e.getCause().getMessage().contains("use the same --transport on every rank"),
                        e.getCause().getMessage());
            }
        }
    }

    /** Segment files created by this process. */
    static List<Path> ourSegments() throws IOException {
        try (Stream<Path> files = Files.list(Path.of("/dev/shm"))) {
            return files.filter(f -> f.getFileName().toString().startsWith("anvil-" + ProcessHandle.current().pid()
                    + "-")).toList();
        }
    }
}
