package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Hello;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.collective.tls.TlsConfig;
import dev.anvil.collective.transport.Frames;
import dev.anvil.collective.transport.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutual TLS keeps out whoever the job's CA did not sign, at the TLS handshake itself: a client certificate from
 * another CA on the coordinator and on the ring ports, a server certificate from another CA, and plaintext. Each
 * refusal is checked against a control that the job's own certificate gets through, so a broken probe cannot pass.
 */
@Timeout(120)
class MutualTlsTest {
    @TempDir
    static Path dir;

    private static TlsConfig node0;
    private static TlsConfig node1;
    /** Rank 1's name, signed by another CA: what an intruder who knows the job's host names could make. */
    private static TlsConfig impostor;
    private static TlsConfig rogueServer;

    private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

    @BeforeAll
    static void certificates() throws Exception {
        Path job = dir.resolve("job");
        Path other = dir.resolve("other");
        certs(job, "node0", "node1");
        certs(other, "node1", "127.0.0.1");
        node0 = new TlsConfig(job.resolve("ca.pem"), job.resolve("node0.pem"), job.resolve("node0-key.pem"));
        node1 = new TlsConfig(job.resolve("ca.pem"), job.resolve("node1.pem"), job.resolve("node1-key.pem"));
        impostor = new TlsConfig(job.resolve("ca.pem"), other.resolve("node1.pem"), other.resolve("node1-key.pem"));
        rogueServer = new TlsConfig(other.resolve("ca.pem"), other.resolve("127.0.0.1.pem"),
                other.resolve("127.0.0.1-key.pem"));
    }

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    private Future<Communicator> start(int port, int rank, CommunicatorOptions options) {
        return pool.submit(() -> NettyCommunicator.connect(RendezvousConfig.of("127.0.0.1", port, rank, 2), options));
    }

    @Test
    void aRankWithACertificateFromAnotherCaFailsTheHandshakeAtTheCoordinatorAndTheJobStillForms() throws Exception {
        JobToken token = JobToken.random();
        int port = LocalCluster.freePort();
        var rank0 = start(port, 0, SecurityTest.options(token).withTls(node0));
        // The right token and rank 1's name: only the certificate's signature gives it away.
        var intruder = start(port, 1, SecurityTest.options(token).withTls(impostor));
        String message = SecurityTest.failure(intruder).getMessage();
        assertTrue(message.contains("connection to the coordinator at 127.0.0.1:" + port + " failed"), message);
        assertTrue(message.contains("TLS handshake failed"), message);
        assertTrue(message.contains("certificate"), "the TLS alert should say the certificate was refused: " + message);
        theRealRank1JoinsAndTheJobWorks(rank0, port, token);
    }

    @Test
    void theCoordinatorAndEveryRingPortRefuseAClientCertificateFromAnotherCa() throws Exception {
        CommunicatorOptions options = AllReduceTest.testOptions().withTls(node0)
                .withTimeouts(Duration.ofSeconds(3), Duration.ofSeconds(20));
        try (LocalCluster cluster = LocalCluster.start(2, options); Transport transport = Transport.create(1)) {
            List<Integer> ports = List.of(((NettyCommunicator) cluster.rank(0)).coordinatorPort(),
                    ((NettyCommunicator) cluster.rank(0)).dataPort(), ((NettyCommunicator) cluster.rank(1)).dataPort());
            for (int port : ports) {
                CompletableFuture<Object> member = probe(transport, port, node1);
                CompletableFuture<Object> intruder = probe(transport, port, impostor);
                // The control: a member's session reaches the protocol, which answers (it refuses a connection that
                // says nothing, after the handshake timeout). So the probe itself works.
                assertInstanceOf(Integer.class, member.get(30, TimeUnit.SECONDS), "port " + port + " to a member");
                Object refused = intruder.get(30, TimeUnit.SECONDS);
                SSLException alert = assertInstanceOf(SSLException.class, refused,
                        "port " + port + " did not refuse a certificate from another CA at the handshake");
                assertTrue(alert.getMessage().contains("certificate"), "port " + port + ": " + alert);
            }
            SecurityTest.allReduceWorks(cluster.rank(0), cluster.rank(1));
        }
    }

    @Test
    void aRankRefusesACoordinatorWithACertificateFromAnotherCaAndSendsItNothing() throws Exception {
        try (SSLServerSocket server = (SSLServerSocket) jdkContext(SslContextBuilder.forServer(
                rogueServer.nodeCert().toFile(), rogueServer.nodeKey().toFile())).getServerSocketFactory()
                .createServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            server.setEnabledProtocols(new String[] {"TLSv1.3"});
            int port = server.getLocalPort();
            Future<Throwable> rogue = pool.submit(() -> {
                try (SSLSocket s = (SSLSocket) server.accept()) {
                    s.setSoTimeout(20_000);
                    int b = s.getInputStream().read();
                    return b < 0 ? new EOFException("the rank closed without sending anything")
                            : new AssertionError("the rank sent the rogue coordinator data (first byte " + b + ")");
                } catch (SocketTimeoutException e) {
                    return new AssertionError("the rank neither refused nor closed the connection", e);
                } catch (IOException e) {
                    // The rank's alert ends the handshake; depending on timing the server's side sees it as an
                    // SSLException or, when its own next write hits the closed socket, as a broken pipe.
                    return e;
                }
            });
            var rank1 = start(port, 1, SecurityTest.options(JobToken.random()).withTls(node1));
            String message = SecurityTest.failure(rank1).getMessage();
            assertTrue(message.contains("connection to the coordinator at 127.0.0.1:" + port + " failed"), message);
            assertTrue(message.contains("TLS handshake failed"), message);
            // The rank stopped at the server's certificate: no Join, so no job token, ever reached the rogue server.
            Throwable outcome = rogue.get(30, TimeUnit.SECONDS);
            assertInstanceOf(IOException.class, outcome, () -> "rogue coordinator: " + outcome);
        }
    }

    @Test
    void aPlaintextRankIsRefusedByATlsJobAndTakesNoOnesPlace() throws Exception {
        JobToken token = JobToken.random();
        int port = LocalCluster.freePort();
        var rank0 = start(port, 0, SecurityTest.options(token).withTls(node0));
        var plaintext = start(port, 1, SecurityTest.options(token));
        String message = SecurityTest.failure(plaintext).getMessage();
        assertTrue(message.contains("coordinator at 127.0.0.1:" + port), message);
        assertTrue(message.contains("TLS"), "the plaintext rank should be told the job may need TLS: " + message);
        theRealRank1JoinsAndTheJobWorks(rank0, port, token);
    }

    @Test
    void aRingPortOfATlsJobAnswersAPlaintextHelloWithNothing() throws Exception {
        CommunicatorOptions options = AllReduceTest.testOptions().withTls(node0);
        try (LocalCluster cluster = LocalCluster.start(2, options);
                Socket s = new Socket("127.0.0.1", ((NettyCommunicator) cluster.rank(1)).dataPort())) {
            s.setSoTimeout(20_000);
            // What rank 0 would say to its right neighbour, token included, but in the clear.
            Header hello = Header.newBuilder().setHello(Hello.newBuilder().setRank(0).setWorldSize(2)
                    .setToken(ByteString.copyFrom(options.token().bytes())).setSliceBytes(options.sliceBytes()))
                    .build();
            ByteBuf frame = Frames.encode(UnpooledByteBufAllocator.DEFAULT, hello);
            s.getOutputStream().write(ByteBufUtil.getBytes(frame));
            frame.release();
            s.getOutputStream().flush();
            assertEquals(-1, readOrEnd(s.getInputStream()), "a TLS port answered plaintext");
            SecurityTest.allReduceWorks(cluster.rank(0), cluster.rank(1));
        }
    }

    /** After the refusal, rank 1 with the job's certificate joins rank 0, and the ring works. */
    private void theRealRank1JoinsAndTheJobWorks(Future<Communicator> rank0, int port, JobToken token)
            throws Exception {
        var rank1 = start(port, 1, SecurityTest.options(token).withTls(node1));
        try (Communicator a = rank0.get(20, TimeUnit.SECONDS); Communicator b = rank1.get(20, TimeUnit.SECONDS)) {
            SecurityTest.allReduceWorks(a, b);
        }
    }

    /**
     * Connects over TLS as {@code tls}'s node and completes with what ends the exchange: the number of application
     * bytes the server sent first, or the {@link SSLException} that failed the connection. (In TLS 1.3 the server checks
     * the client's certificate after the client finished, so a refusal is a TLS alert that arrives after the client's
     * side of the handshake is done. Netty sends the client's last flight in one write, so the alert is not lost to a
     * reset.)
     */
    private static CompletableFuture<Object> probe(Transport transport, int port, TlsConfig tls) {
        CompletableFuture<Object> seen = new CompletableFuture<>();
        SslContext ssl = tls.clientContext();
        new Bootstrap().group(transport.group()).channel(transport.socketChannel())
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast(ssl.newHandler(ch.alloc()), new ChannelInboundHandlerAdapter() {
                            @Override
                            public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                seen.complete(((ByteBuf) msg).readableBytes());
                                ReferenceCountUtil.release(msg);
                                ctx.close();
                            }

                            @Override
                            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                seen.complete(cause instanceof DecoderException d && d.getCause() != null
                                        ? d.getCause() : cause);
                                ctx.close();
                            }

                            @Override
                            public void channelInactive(ChannelHandlerContext ctx) {
                                seen.complete("closed without a word");
                            }
                        });
                    }
                }).connect("127.0.0.1", port);
        return seen;
    }

    /** The next byte, or -1 at the end of the stream or when the peer reset the connection. */
    private static int readOrEnd(InputStream in) throws IOException {
        try {
            return in.read();
        } catch (SocketException reset) {
            return -1;
        }
    }

    private static SSLContext jdkContext(SslContextBuilder builder) throws SSLException {
        return ((JdkSslContext) builder.sslProvider(SslProvider.JDK).build()).context();
    }

    static void certs(Path dir, String... nodes) throws Exception {
        String[] command = new String[nodes.length + 2];
        command[0] = Path.of("..", "bin", "anvil-certs").toAbsolutePath().normalize().toString();
        command[1] = dir.toString();
        System.arraycopy(nodes, 0, command, 2, nodes.length);
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "anvil-certs failed: " + output);
    }
}
