package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.anvil.collective.tls.TlsConfig;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Data over TLS links: many records per slice, slices that end mid-record, the same bits as plain TCP. */
@Timeout(60)
class TlsDataLinkTest {

    @Test
    void allReduceOverTlsGivesTheSameBitsAsOverPlainTcp(@TempDir Path dir) throws Exception {
        MutualTlsTest.certs(dir, "node");
        TlsConfig tls = new TlsConfig(dir.resolve("ca.pem"), dir.resolve("node.pem"), dir.resolve("node-key.pem"));
        // 100,003 floats over 3 ranks, 2 channels and 20,000-byte slices: records and slices never line up.
        CommunicatorOptions plain = AllReduceTest.testOptions().withDataTransport(DataTransport.TCP).withChannels(2)
                .withSliceBytes(20_000);
        List<MemorySegment> overTcp = allReduce(plain);
        try (LocalCluster cluster = LocalCluster.start(3, plain.withTls(tls))) {
            assertEquals(List.of("tls", "tls"), ((NettyCommunicator) cluster.rank(0)).dataLinks());
        }
        List<MemorySegment> overTls = allReduce(plain.withTls(tls));
        for (int r = 0; r < 3; r++) {
            assertEquals(-1, overTcp.get(r).mismatch(overTls.get(r)), "rank " + r);
        }
    }

    private static List<MemorySegment> allReduce(CommunicatorOptions options) {
        try (LocalCluster cluster = LocalCluster.start(3, options)) {
            List<MemorySegment> bufs = new ArrayList<>();
            List<CompletableFuture<Void>> pending = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                Random rnd = new Random(r);
                MemorySegment b = Arena.ofAuto().allocate(4L * 100_003);
                for (long i = 0; i < 100_003; i++) {
                    b.setAtIndex(AllReduceTest.F32, i, rnd.nextFloat());
                }
                bufs.add(b);
                pending.add(cluster.rank(r).allReduceAsync(b, ElementType.FLOAT32, ReduceOp.SUM));
            }
            pending.forEach(Communicator::await);
            return bufs;
        }
    }
}
