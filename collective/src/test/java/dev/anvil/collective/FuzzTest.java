package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.link.Connection;
import dev.anvil.collective.link.DataHeader;
import dev.anvil.collective.link.Endpoint;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Hello;
import dev.anvil.collective.proto.Join;
import dev.anvil.collective.proto.OpKind;
import dev.anvil.collective.proto.WireElementType;
import dev.anvil.collective.proto.WireReduceOp;
import dev.anvil.collective.rendezvous.Coordinator;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.collective.ring.RingEngine;
import dev.anvil.collective.ring.RingHandshake;
import com.google.protobuf.ByteString;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Hostile bytes at every listening port in every state it can be reached in, and in the binary data stream of an
 * established ring link: each kind of bad input is refused for its own stated reason, nothing it claims gets
 * allocated (direct memory, where Netty and the data links allocate, is measured), and the real ranks are unaffected.
 */
@Timeout(120)
class FuzzTest {
    private static final Duration PEER_TIMEOUT = Duration.ofSeconds(2);
    private static final int SLICE = 64 * 1024;
    /** Sent after an oversized length claim: a decoder that believed the claim would buffer all of it. */
    private static final int JUNK_AFTER_CLAIM = 8 << 20;
    private static final long DIRECT_SLACK = 4L << 20;

    /** The kinds of hostile input, each with the start of the refusal it must get. */
    private enum Kind {
        OVERSIZED_LENGTH, UNPARSEABLE_HEADER, UNKNOWN_TYPE, TRUNCATED_FRAME, RANDOM_BYTES
    }

    /** A listening port in one state: what it may receive first, its limit, and its refusal for a stalled frame. */
    private record PortState(String name, int port, Header allowed, int maxHeader, String stalledRefusal) {
    }

    @Test
    void everyListeningPortInEveryStateRefusesEachKindOfBadFrameForItsReason() throws Exception {
        JobToken token = JobToken.random();
        int masterPort = LocalCluster.freePort();
        int ringPort0 = LocalCluster.freePort();
        CommunicatorOptions options = CommunicatorOptions.defaults(token).withHost("127.0.0.1")
                .withTimeouts(PEER_TIMEOUT, Duration.ofSeconds(60)).withSliceBytes(SLICE);
        Header join = Header.newBuilder().setJoin(Join.newBuilder().setRank(1).setWorldSize(2)
                .setToken(ByteString.copyFromUtf8("not the token"))).build();
        Header hello = Header.newBuilder().setHello(Hello.newBuilder().setRank(1).setWorldSize(2)
                .setToken(ByteString.copyFromUtf8("not the token")).setSliceBytes(SLICE)).build();
        long directBefore = directMemory();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            // Before the rendezvous: rank 0 alone, its coordinator and its ring port waiting for the others.
            Future<Communicator> rank0 = pool.submit(() -> NettyCommunicator.connect(
                    RendezvousConfig.of("127.0.0.1", masterPort, 0, 2), options.withDataPort(ringPort0)));
            waitForListener(masterPort);
            waitForListener(ringPort0);
            barrage(pool, List.of(
                    new PortState("coordinator before the rendezvous", masterPort, join, Coordinator.MAX_JOIN_BYTES,
                            "no Join within"),
                    new PortState("ring port before the ring is up", ringPort0, hello, RingHandshake.MAX_HEADER_BYTES,
                            "no Hello within")));

            // The real rank 1 still gets in; then the same at the running job's ports.
            Future<Communicator> rank1 = pool.submit(() -> NettyCommunicator.connect(
                    RendezvousConfig.of("127.0.0.1", masterPort, 1, 2), options));
            try (Communicator a = rank0.get(60, TimeUnit.SECONDS); Communicator b = rank1.get(60, TimeUnit.SECONDS)) {
                barrage(pool, List.of(
                        new PortState("coordinator of a running job", masterPort, join, Coordinator.MAX_JOIN_BYTES,
                                "no Join within"),
                        new PortState("ring port of a running ring", ((NettyCommunicator) b).dataPort(), hello,
                                RingHandshake.MAX_HEADER_BYTES, "no Hello within")));
                SecurityTest.allReduceWorks(a, b);
            }
        }
        assertTrue(directMemory() - directBefore < DIRECT_SLACK, "direct memory grew by "
                + (directMemory() - directBefore) + " bytes while refusing hostile frames");
    }

    /** Sends every kind of hostile input to every port state at once and checks each refusal. */
    private static void barrage(ExecutorService pool, List<PortState> states) throws Exception {
        List<Future<?>> checks = new ArrayList<>();
        for (PortState state : states) {
            for (Kind kind : Kind.values()) {
                checks.add(pool.submit(() -> {
                    String refusal;
                    try {
                        refusal = refusal(state.port(), hostile(kind, state));
                    } catch (IOException e) {
                        throw new AssertionError(state.name() + ", " + kind + ": no refusal", e);
                    }
                    String want = switch (kind) {
                        case OVERSIZED_LENGTH -> "bad frame: header length " + (state.maxHeader() + 1) + " outside 1.."
                                + state.maxHeader();
                        case UNPARSEABLE_HEADER -> "bad frame: unparseable header";
                        case UNKNOWN_TYPE -> "bad frame: unknown message type";
                        case TRUNCATED_FRAME -> state.stalledRefusal();
                        case RANDOM_BYTES -> "bad frame: ";
                    };
                    assertTrue(refusal.startsWith(want), state.name() + ", " + kind + ": refused with '" + refusal
                            + "', expected '" + want + "...'");
                    return null;
                }));
            }
        }
        for (PortState state : states) {
            checks.add(pool.submit(() -> {
                closesAfterAClaimFollowedByJunk(state);
                return null;
            }));
        }
        for (Future<?> check : checks) {
            check.get(60, TimeUnit.SECONDS);
        }
    }

    /**
     * Claims a 2 GB frame and sends 8 MB of it: the port must close the connection, having buffered none of it (a
     * decoder that believed the claim would hold it all, in direct memory for Netty). The refusal itself may be lost
     * to the reset that closing a connection with unread bytes causes; the other cases check it.
     */
    private static void closesAfterAClaimFollowedByJunk(PortState state) throws IOException {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), state.port())) {
            s.setSoTimeout(20_000);
            OutputStream out = s.getOutputStream();
            try {
                new DataOutputStream(out).writeInt(Integer.MAX_VALUE);
                byte[] junk = new byte[64 * 1024];
                for (int sent = 0; sent < JUNK_AFTER_CLAIM; sent += junk.length) {
                    out.write(junk);
                }
                s.shutdownOutput();
            } catch (IOException closed) {
                return; // closed while it was still being sent to: refused
            }
            try {
                while (s.getInputStream().read(new byte[4096]) >= 0) {
                    // the Refused, if it arrives
                }
            } catch (SocketTimeoutException e) {
                throw new AssertionError(state.name() + " kept a connection open after a 2 GB claim", e);
            } catch (IOException reset) {
                // closed with a reset: refused as well
            }
        }
    }

    private static byte[] hostile(Kind kind, PortState state) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        switch (kind) {
            case OVERSIZED_LENGTH -> {
                // An allowed type, claiming one byte over the limit.
                out.writeInt(state.maxHeader() + 1);
                out.write(state.allowed().toByteArray());
            }
            case UNPARSEABLE_HEADER -> {
                out.writeInt(3);
                out.write(new byte[] {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF});
            }
            case UNKNOWN_TYPE -> {
                out.writeInt(2);
                out.write(new byte[] {(byte) (15 << 3), 1}); // field 15: no message type this version knows
            }
            case TRUNCATED_FRAME -> {
                byte[] whole = frame(state.allowed());
                out.write(Arrays.copyOf(whole, whole.length - 3));
            }
            case RANDOM_BYTES -> {
                byte[] junk = new byte[3000];
                new Random(state.port() * 31L + kind.ordinal()).nextBytes(junk);
                junk[0] = (byte) 0x80; // a length prefix that no port accepts, whatever the seed
                out.write(junk);
            }
        }
        return bytes.toByteArray();
    }

    private static byte[] frame(Header h) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(h.getSerializedSize());
        h.writeTo(out);
        return bytes.toByteArray();
    }

    /** Sends {@code bytes} (as far as the port reads them) and returns the reason of the Refused it answers with. */
    private static String refusal(int port, byte[] bytes) throws IOException {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.setSoTimeout(30_000);
            OutputStream out = s.getOutputStream();
            try {
                for (int at = 0; at < bytes.length; at += 64 * 1024) {
                    out.write(bytes, at, Math.min(64 * 1024, bytes.length - at));
                }
                out.flush();
            } catch (IOException closedWhileSending) {
                // refused before it read everything: the answer is what matters
            }
            DataInputStream in = new DataInputStream(s.getInputStream());
            Header answer;
            do { // a coordinator keeps an open connection alive with heartbeats until it refuses it
                byte[] reply = new byte[in.readInt()];
                in.readFully(reply);
                answer = Header.parseFrom(reply);
            } while (answer.hasHeartbeat());
            assertTrue(answer.hasRefused(), "expected a Refused, got " + answer);
            assertEquals(-1, in.read(), "the connection must be closed after the refusal");
            return answer.getRefused().getReason();
        }
    }

    @Test
    void hostileDataFramesOnAnEstablishedRingLinkAreRefusedForTheirReason() throws Exception {
        long directBefore = directMemory();
        DataHeader chunk = new DataHeader();
        chunk.type = DataHeader.CHUNK;
        chunk.kind = OpKind.ALL_REDUCE;
        chunk.elementType = WireElementType.FLOAT32;
        chunk.reduceOp = WireReduceOp.SUM;
        chunk.elementCount = 1000;
        chunk.root = -1;
        chunk.payloadLength = 2000;

        ByteBuffer oversized = header(chunk);
        oversized.putInt(36, -16); // 4 GB - 16 bytes claimed by an allowed frame type
        expectRefusal(oversized, "chunk payload of 4294967280 bytes exceeds the slice size of 65536");
        ByteBuffer unparseable = header(chunk);
        unparseable.put(5, (byte) 99); // no such op kind
        expectRefusal(unparseable, "unparseable header");
        ByteBuffer unknown = header(chunk);
        unknown.put(4, (byte) 9);
        expectRefusal(unknown, "unknown frame type 9");
        ByteBuffer truncated = ByteBuffer.allocate(DataHeader.BYTES + 1000);
        chunk.encode(truncated);
        expectRefusal(truncated.position(DataHeader.BYTES + 1000).flip(), "connection closed in the middle of a frame");
        byte[] junk = new byte[4096];
        new Random(11).nextBytes(junk);
        junk[0] = 'X';
        expectRefusal(ByteBuffer.wrap(junk), "is not an Anvil data frame");

        assertTrue(directMemory() - directBefore < DIRECT_SLACK, "direct memory grew by "
                + (directMemory() - directBefore) + " bytes while refusing hostile data frames");
    }

    private static ByteBuffer header(DataHeader h) {
        ByteBuffer b = ByteBuffer.allocate(DataHeader.BYTES).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        h.encode(b);
        return b.flip();
    }

    /**
     * Rank 1 of 2 with a real engine whose left link comes from this test: an all-reduce is issued, {@code bytes}
     * arrive on the link, then it closes; the all-reduce must fail blaming rank 0 with {@code reason}.
     */
    private static void expectRefusal(ByteBuffer bytes, String reason) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            SocketChannel leftNeighbour = SocketChannel.open(server.getLocalAddress());
            Connection fromLeft = new Connection(Endpoint.open(server.accept(), null, SLICE, deadline), null);
            SocketChannel toRight = SocketChannel.open(server.getLocalAddress());
            SocketChannel rightNeighbour = server.accept();
            Connection right = new Connection(Endpoint.open(toRight, null, SLICE, deadline), null);
            RingEngine engine = new RingEngine(1, 2, SLICE, PEER_TIMEOUT,
                    List.of(new RingEngine.Links(fromLeft, right)), r -> "test:" + r, abort -> { });
            try {
                engine.start();
                CompletableFuture<Void> op = engine.allReduce(Arena.ofAuto().allocate(4000), ElementType.FLOAT32,
                        ReduceOp.SUM);
                while (bytes.hasRemaining()) {
                    leftNeighbour.write(bytes);
                }
                leftNeighbour.close();
                ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                        () -> op.get(30, TimeUnit.SECONDS));
                PeerLostException lost = assertInstanceOf(PeerLostException.class, e.getCause());
                assertEquals(0, lost.lostRank(), lost.getMessage());
                assertTrue(lost.getMessage().contains(reason), "expected '" + reason + "', got: " + lost.getMessage());
            } finally {
                engine.close();
                rightNeighbour.close();
            }
        }
    }

    /** Direct memory in use: the JDK's direct buffers and native segments, and Netty's allocator's. */
    private static long directMemory() {
        System.gc(); // lets the cleaners of unreachable direct buffers run, so only held memory is counted
        long jdk = 0;
        for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            jdk += pool.getMemoryUsed();
        }
        long netty = ((ByteBufAllocatorMetricProvider) ByteBufAllocator.DEFAULT).metric().usedDirectMemory();
        return jdk + netty;
    }

    private static void waitForListener(int port) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                return;
            } catch (IOException notYet) {
                Thread.sleep(20);
            }
        }
        throw new AssertionError("nothing listened on " + port);
    }
}
