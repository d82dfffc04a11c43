package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Join;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import com.google.protobuf.ByteString;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Hostile bytes at the coordinator and ring ports: refused, no large allocation, legitimate ranks unaffected. */
@Timeout(60)
class FuzzTest {
    private static final long HEAP_SLACK = 64L << 20;

    static List<byte[]> payloads(Random rnd) throws IOException {
        List<byte[]> out = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            byte[] junk = new byte[1 + rnd.nextInt(3000)];
            rnd.nextBytes(junk);
            out.add(junk);
        }
        out.add(new byte[] {0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff}); // header length 2 GB
        byte[] join = frame(Header.newBuilder().setJoin(Join.newBuilder().setRank(1).setWorldSize(2)
                .setToken(ByteString.copyFromUtf8("x"))).build());
        out.add(java.util.Arrays.copyOf(join, join.length - 3)); // truncated
        out.add(join); // valid shape, wrong token
        return out;
    }

    static byte[] frame(Header h) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(h.getSerializedSize());
        h.writeTo(out);
        return bytes.toByteArray();
    }

    /** Sends {@code bytes} and expects the server to close the connection (it may reply first). */
    static void assertRejected(int port, byte[] bytes) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(8000);
            s.getOutputStream().write(bytes);
            s.getOutputStream().flush();
            InputStream in = s.getInputStream();
            byte[] sink = new byte[4096];
            try {
                while (in.read(sink) >= 0) {
                    // drain a Refused reply, if any
                }
            } catch (SocketTimeoutException e) {
                throw new AssertionError("port " + port + " kept a connection open after " + bytes.length
                        + " hostile bytes", e);
            } catch (IOException reset) {
                // closed with a reset: rejected as well
            }
        }
    }

    static long usedHeap() {
        System.gc();
        Runtime rt = Runtime.getRuntime();
        return rt.totalMemory() - rt.freeMemory();
    }

    @Test
    void hostileBytesAtCoordinatorAndRingPortsAreRejectedAndTheRingKeepsWorking() throws Exception {
        CommunicatorOptions options = AllReduceTest.testOptions().withTimeouts(Duration.ofSeconds(3),
                Duration.ofSeconds(20));
        try (LocalCluster cluster = LocalCluster.start(2, options)) {
            long before = usedHeap();
            List<Integer> ports = List.of(((NettyCommunicator) cluster.rank(0)).coordinatorPort(),
                    ((NettyCommunicator) cluster.rank(0)).dataPort(), ((NettyCommunicator) cluster.rank(1)).dataPort());
            for (int port : ports) {
                for (byte[] hostile : payloads(new Random(port))) {
                    assertRejected(port, hostile);
                }
            }
            assertTrue(usedHeap() - before < HEAP_SLACK, "heap grew while refusing hostile frames");
            MemorySegment a = Arena.ofAuto().allocate(4L << 16);
            MemorySegment b = Arena.ofAuto().allocate(4L << 16);
            a.fill((byte) 0);
            b.setAtIndex(AllReduceTest.F32, 5, 2f);
            var fa = cluster.rank(0).allReduceAsync(a, ElementType.FLOAT32, ReduceOp.SUM);
            var fb = cluster.rank(1).allReduceAsync(b, ElementType.FLOAT32, ReduceOp.SUM);
            Communicator.await(fa);
            Communicator.await(fb);
            assertTrue(a.getAtIndex(AllReduceTest.F32, 5) == 2f && a.mismatch(b) == -1);
        }
    }

    @Test
    void coordinatorFuzzedBeforeTheRendezvousStillAdmitsTheRealRanks() throws Exception {
        JobToken token = JobToken.random();
        CommunicatorOptions options = CommunicatorOptions.defaults(token).withHost("127.0.0.1")
                .withTimeouts(Duration.ofSeconds(3), Duration.ofSeconds(20));
        int port = LocalCluster.freePort();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<Communicator> rank0 = pool.submit(() -> NettyCommunicator.connect(
                    RendezvousConfig.of("127.0.0.1", port, 0, 2), options));
            waitForListener(port);
            for (byte[] hostile : payloads(new Random(5))) {
                assertRejected(port, hostile);
            }
            Future<Communicator> rank1 = pool.submit(() -> NettyCommunicator.connect(
                    RendezvousConfig.of("127.0.0.1", port, 1, 2), options));
            try (Communicator a = rank0.get(20, TimeUnit.SECONDS); Communicator b = rank1.get(20, TimeUnit.SECONDS)) {
                var fa = a.allReduceAsync(Arena.ofAuto().allocate(64), ElementType.FLOAT32, ReduceOp.MEAN);
                b.allReduce(Arena.ofAuto().allocate(64), ElementType.FLOAT32, ReduceOp.MEAN);
                Communicator.await(fa);
            }
        }
    }

    private static void waitForListener(int port) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException notYet) {
                Thread.sleep(20);
            }
        }
        throw new AssertionError("coordinator never listened on " + port);
    }
}
