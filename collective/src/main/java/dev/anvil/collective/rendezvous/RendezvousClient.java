package dev.anvil.collective.rendezvous;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Join;
import dev.anvil.collective.proto.PeerAddress;
import dev.anvil.collective.proto.Welcome;
import dev.anvil.collective.tls.TlsConfig;
import dev.anvil.collective.transport.Connector;
import dev.anvil.collective.transport.FrameDecoder;
import dev.anvil.collective.transport.Frames;
import dev.anvil.collective.transport.Heartbeats;
import dev.anvil.collective.transport.Transport;
import com.google.protobuf.ByteString;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.ssl.SslContext;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;

/** A rank's side of the rendezvous: join the coordinator, wait for everyone's data address, then listen for aborts. */
public final class RendezvousClient {
    private RendezvousClient() {
    }

    /**
     * What the rendezvous produced.
     *
     * @param control the connection to the coordinator, kept open to hear and report aborts
     * @param peers every rank's data address, indexed by rank
     */
    public record Joined(Channel control, List<PeerAddress> peers) {
    }

    /**
     * Joins and waits for the Welcome.
     *
     * @param advertiseHost host the other ranks should use to reach {@code dataPort}; null picks the local address
     *     of the connection to the coordinator (the interface that routes to the master)
     * @throws CollectiveException when refused, or when the deadline passes
     */
    public static Joined join(Transport transport, RendezvousConfig config, JobToken token, String fingerprint,
            TlsConfig tls, String advertiseHost, int dataPort, Instant deadline, Duration peerTimeout,
            ControlListener listener) {
        SslContext ssl = tls == null ? null : tls.clientContext();
        int maxWelcome = 1024 + 300 * config.worldSize();
        Handler handler = new Handler(config, listener, ssl != null);
        String coordinator = "the coordinator (rank 0)";
        Channel ch = Connector.connect(transport, config.masterHost(), config.masterPort(),
                new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel c) {
                        if (ssl != null) {
                            c.pipeline().addLast("tls", ssl.newHandler(c.alloc(), config.masterHost(),
                                    config.masterPort()));
                        }
                        c.pipeline().addLast("frames", new FrameDecoder(maxWelcome, EnumSet.of(
                                Header.BodyCase.WELCOME, Header.BodyCase.REFUSED, Header.BodyCase.ABORT,
                                Header.BodyCase.HEARTBEAT)));
                        Heartbeats.install(c.pipeline(), peerTimeout);
                        c.pipeline().addLast("control", handler);
                    }
                }, deadline, coordinator);
        String host = advertiseHost != null ? advertiseHost
                : ((InetSocketAddress) ch.localAddress()).getAddress().getHostAddress();
        Join join = Join.newBuilder()
                .setRank(config.rank())
                .setWorldSize(config.worldSize())
                .setDataHost(host)
                .setDataPort(dataPort)
                .setFingerprint(fingerprint)
                .setToken(ByteString.copyFrom(token.bytes()))
                .build();
        ch.writeAndFlush(Frames.encode(ch.alloc(), Header.newBuilder().setJoin(join).build()));
        try {
            long millis = Math.max(1, Duration.between(Instant.now(), deadline).toMillis());
            return new Joined(ch, handler.welcome.get(millis, TimeUnit.MILLISECONDS));
        } catch (TimeoutException e) {
            ch.close();
            throw new CollectiveException("rank " + config.rank() + ": rendezvous at " + config.masterHost() + ":"
                    + config.masterPort() + " did not complete before the deadline; not all " + config.worldSize()
                    + " ranks joined (are they all launched with the same MASTER_ADDR/MASTER_PORT?)");
        } catch (ExecutionException e) {
            ch.close();
            throw e.getCause() instanceof CollectiveException c ? c
                    : new CollectiveException("rendezvous failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            ch.close();
            Thread.currentThread().interrupt();
            throw new CollectiveException("interrupted during rendezvous", e);
        }
    }

    // Sharable because each connect attempt installs it; only the attempt that connects ever sees events.
    @io.netty.channel.ChannelHandler.Sharable
    private static final class Handler extends SimpleChannelInboundHandler<Header> {
        final CompletableFuture<List<PeerAddress>> welcome = new CompletableFuture<>();
        private final RendezvousConfig config;
        private final ControlListener listener;
        private final boolean tls;

        Handler(RendezvousConfig config, ControlListener listener, boolean tls) {
            this.config = config;
            this.listener = listener;
            this.tls = tls;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Header h) {
            switch (h.getBodyCase()) {
                case WELCOME -> onWelcome(ctx, h.getWelcome());
                case REFUSED -> fail(ctx, "coordinator at " + where() + " refused rank " + config.rank() + ": "
                        + h.getRefused().getReason());
                case ABORT -> {
                    if (!welcome.isDone()) {
                        fail(ctx, "rendezvous aborted: " + h.getAbort().getReason());
                    } else {
                        listener.onAbort(h.getAbort().getLostRank(), h.getAbort().getReason());
                    }
                }
                default -> fail(ctx, "coordinator sent unexpected " + h.getBodyCase());
            }
        }

        private void onWelcome(ChannelHandlerContext ctx, Welcome w) {
            List<PeerAddress> peers = w.getPeersList();
            boolean valid = peers.size() == config.worldSize();
            for (int r = 0; valid && r < peers.size(); r++) {
                PeerAddress p = peers.get(r);
                valid = p.getRank() == r && p.getPort() > 0 && p.getPort() <= 65535 && !p.getHost().isEmpty();
            }
            if (!valid || welcome.isDone()) {
                fail(ctx, "coordinator sent an invalid Welcome for world size " + config.worldSize());
                return;
            }
            welcome.complete(List.copyOf(peers));
        }

        private void fail(ChannelHandlerContext ctx, String message) {
            lost(message, new CollectiveException(message));
            ctx.close();
        }

        private String where() {
            return config.masterHost() + ":" + config.masterPort();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (evt instanceof Heartbeats.PeerSilent silent) {
                fail(ctx, "coordinator at " + where() + " sent nothing for " + silent.silence().toMillis() + " ms");
                return;
            }
            super.userEventTriggered(ctx, evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            String message = "connection to the coordinator at " + where() + " closed";
            // A coordinator that uses TLS drops a plaintext connection without a word: say so.
            lost(message, new CollectiveException(message + " before the rendezvous completed" + (tls ? ""
                    : "; if the job uses mutual TLS, this rank must too (the job's CA certificate, and a certificate"
                            + " and key of this node's that the CA signed)")));
        }

        /** Before the Welcome a loss fails the rendezvous; after it, the communicator hears about it. */
        private void lost(String message, CollectiveException beforeWelcome) {
            if (welcome.isDone() && !welcome.isCompletedExceptionally()) {
                listener.onCoordinatorLost(message);
            } else {
                welcome.completeExceptionally(beforeWelcome);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            Throwable root = cause.getCause() instanceof SSLException ssl ? ssl : cause;
            String hint = root instanceof SSLException
                    ? "; TLS handshake failed: check that this node's certificate and the coordinator's are signed by"
                            + " the same job CA"
                    : "";
            fail(ctx, "connection to the coordinator at " + where() + " failed: " + root.getMessage() + hint);
        }
    }
}
