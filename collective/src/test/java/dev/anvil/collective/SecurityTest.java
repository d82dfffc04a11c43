package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Hello;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import com.google.protobuf.ByteString;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class SecurityTest {
    private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    static CommunicatorOptions options(JobToken token) {
        return CommunicatorOptions.defaults(token).withHost("127.0.0.1")
                .withTimeouts(Duration.ofSeconds(3), Duration.ofSeconds(8));
    }

    private Future<Communicator> start(int port, int rank, int ranks, CommunicatorOptions options) {
        return pool.submit(() -> NettyCommunicator.connect(RendezvousConfig.of("127.0.0.1", port, rank, ranks),
                options));
    }

    static CollectiveException failure(Future<Communicator> f) throws Exception {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(20, TimeUnit.SECONDS));
        return (CollectiveException) e.getCause();
    }

    static void allReduceWorks(Communicator a, Communicator b) throws Exception {
        MemorySegment x = Arena.ofAuto().allocate(4000);
        MemorySegment y = Arena.ofAuto().allocate(4000);
        x.setAtIndex(AllReduceTest.F32, 3, 1.5f);
        y.setAtIndex(AllReduceTest.F32, 3, 2.0f);
        var fx = a.allReduceAsync(x, ElementType.FLOAT32, ReduceOp.SUM);
        var fy = b.allReduceAsync(y, ElementType.FLOAT32, ReduceOp.SUM);
        Communicator.await(fx);
        Communicator.await(fy);
        assertEquals(3.5f, x.getAtIndex(AllReduceTest.F32, 3));
        assertEquals(-1, x.mismatch(y));
    }

    @Test
    void fingerprintMismatchIsRefusedNamingTheRankAndBothValues() throws Exception {
        JobToken token = JobToken.random();
        int port = LocalCluster.freePort();
        var rank0 = start(port, 0, 2, options(token).withFingerprint("gpt2-124M@v1"));
        var rank1 = start(port, 1, 2, options(token).withFingerprint("gpt2-350M@v1"));
        for (var f : new Future[] {rank0, rank1}) {
            @SuppressWarnings("unchecked")
            String message = failure((Future<Communicator>) f).getMessage();
            assertTrue(message.contains("rank 1 differs from rank 0"), message);
            assertTrue(message.contains("'gpt2-124M@v1'") && message.contains("'gpt2-350M@v1'"), message);
        }
    }

    @Test
    void wrongTokenIsRefusedAndTheJobStillForms() throws Exception {
        JobToken token = JobToken.random();
        int port = LocalCluster.freePort();
        var rank0 = start(port, 0, 2, options(token));
        var intruder = start(port, 1, 2, options(JobToken.of("guess")));
        assertTrue(failure(intruder).getMessage().contains("wrong job token"));
        var rank1 = start(port, 1, 2, options(token));
        try (Communicator a = rank0.get(20, TimeUnit.SECONDS); Communicator b = rank1.get(20, TimeUnit.SECONDS)) {
            allReduceWorks(a, b);
        }
    }

    @Test
    void ringPortRefusesAHelloWithAWrongToken() throws Exception {
        try (LocalCluster cluster = LocalCluster.start(2, AllReduceTest.testOptions());
                Socket s = new Socket("127.0.0.1", ((NettyCommunicator) cluster.rank(1)).dataPort())) {
            s.setSoTimeout(5000);
            Header hello = Header.newBuilder().setHello(Hello.newBuilder().setRank(0).setWorldSize(2)
                    .setToken(ByteString.copyFromUtf8("guess")).setSliceBytes(64 * 1024)).build();
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            out.writeInt(hello.getSerializedSize());
            hello.writeTo(out);
            out.flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] reply = new byte[in.readInt()];
            in.readFully(reply);
            Header refused = Header.parseFrom(reply);
            assertTrue(refused.getRefused().getReason().contains("wrong job token"), refused.toString());
            assertEquals(-1, in.read(), "the connection must be closed after the refusal");
            allReduceWorks(cluster.rank(0), cluster.rank(1));
        }
    }
}
