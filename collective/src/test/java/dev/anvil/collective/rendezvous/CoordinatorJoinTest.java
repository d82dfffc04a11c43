package dev.anvil.collective.rendezvous;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Join;
import dev.anvil.collective.transport.Frames;
import dev.anvil.collective.transport.Transport;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.UnpooledByteBufAllocator;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The coordinator turns away a Join that carries the right token but cannot belong to the job, and says why: a rank
 * outside the world, a rank already taken, another world size, a Join after the rendezvous completed.
 */
@Timeout(60)
class CoordinatorJoinTest {
    private static final int WORLD = 2;
    private static final String FINGERPRINT = "tiny@test";

    private final JobToken token = JobToken.random();
    private final List<Socket> sockets = new ArrayList<>();
    private Transport transport;
    private Coordinator coordinator;

    @BeforeEach
    void start() {
        transport = Transport.create(1);
        coordinator = Coordinator.start(transport, "127.0.0.1", 0, WORLD, FINGERPRINT, token, null,
                Duration.ofSeconds(20), Duration.ofSeconds(30));
    }

    @AfterEach
    void stop() throws IOException {
        for (Socket s : sockets) {
            s.close();
        }
        coordinator.close();
        transport.close();
    }

    @Test
    void aRankOutsideTheWorldIsRefusedNamingTheRankAndTheRange() throws IOException {
        for (int rank : new int[] {WORLD, -1}) {
            Socket s = join(rank, WORLD);
            assertRefused(s, "rank " + rank + " is outside 0.." + (WORLD - 1) + " (world size " + WORLD + " at rank 0)");
        }
        assertAdmitsTheRealRanks();
    }

    @Test
    void aSecondClaimOnARankIsRefusedNamingTheRankAndTheFirstClaimant() throws IOException {
        Socket first = join(1, WORLD);
        Socket second = join(1, WORLD);
        assertRefused(second, "rank 1 already joined from /127.0.0.1:" + first.getLocalPort()
                + "; two processes claim the same rank");
        // The first claimant keeps its place: rank 0's arrival completes the rendezvous for it.
        Socket rank0 = join(0, WORLD);
        assertEquals(Header.BodyCase.WELCOME, receive(first).getBodyCase());
        assertEquals(Header.BodyCase.WELCOME, receive(rank0).getBodyCase());
    }

    @Test
    void anotherWorldSizeAbortsTheRendezvousForEveryoneNamingBothSizes() throws IOException {
        Socket rank0 = join(0, WORLD);
        Socket rank1 = join(1, WORLD + 1);
        String reason = "rank 1 announced world size " + (WORLD + 1) + " but rank 0 has " + WORLD;
        assertRefused(rank1, reason);
        assertRefused(rank0, reason); // rank 0 must not wait for a job that cannot form
    }

    @Test
    void aJoinAfterTheRendezvousCompletedIsRefusedAsLate() throws IOException {
        assertAdmitsTheRealRanks();
        Socket late = join(1, WORLD);
        assertRefused(late, "the rendezvous already completed; rank 1 joined too late or twice");
    }

    /** Ranks 0 and 1 join and are both welcomed. */
    private void assertAdmitsTheRealRanks() throws IOException {
        Socket rank0 = join(0, WORLD);
        Socket rank1 = join(1, WORLD);
        assertEquals(Header.BodyCase.WELCOME, receive(rank0).getBodyCase());
        assertEquals(Header.BodyCase.WELCOME, receive(rank1).getBodyCase());
    }

    /** Connects and sends a Join with the job's token and fingerprint. */
    private Socket join(int rank, int worldSize) throws IOException {
        Socket s = new Socket("127.0.0.1", coordinator.port());
        sockets.add(s);
        s.setSoTimeout(20_000);
        Header join = Header.newBuilder().setJoin(Join.newBuilder().setRank(rank).setWorldSize(worldSize)
                .setDataHost("127.0.0.1").setDataPort(40_000 + sockets.size()).setFingerprint(FINGERPRINT)
                .setToken(ByteString.copyFrom(token.bytes()))).build();
        ByteBuf frame = Frames.encode(UnpooledByteBufAllocator.DEFAULT, join);
        s.getOutputStream().write(ByteBufUtil.getBytes(frame));
        frame.release();
        s.getOutputStream().flush();
        return s;
    }

    /** The next frame's header (a 4-byte big-endian length, then the header) other than a heartbeat. */
    private static Header receive(Socket s) throws IOException {
        DataInputStream in = new DataInputStream(s.getInputStream());
        while (true) {
            byte[] bytes = new byte[in.readInt()];
            in.readFully(bytes);
            Header header = Header.parseFrom(bytes);
            if (header.getBodyCase() != Header.BodyCase.HEARTBEAT) {
                return header;
            }
        }
    }

    private static void assertRefused(Socket s, String reason) throws IOException {
        Header reply = receive(s);
        assertEquals(Header.BodyCase.REFUSED, reply.getBodyCase(), reply.toString());
        assertTrue(reply.getRefused().getReason().contains(reason), reply.getRefused().getReason());
        int next;
        try {
            next = s.getInputStream().read();
        } catch (SocketException reset) {
            next = -1;
        }
        assertEquals(-1, next, "the connection must be closed after the refusal");
    }
}
