package dev.anvil.collective.rendezvous;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.proto.Abort;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Join;
import dev.anvil.collective.proto.PeerAddress;
import dev.anvil.collective.proto.Refused;
import dev.anvil.collective.proto.Welcome;
import dev.anvil.collective.tls.TlsConfig;
import dev.anvil.collective.transport.FrameDecoder;
import dev.anvil.collective.transport.Frames;
import dev.anvil.collective.transport.Heartbeats;
import dev.anvil.collective.transport.Transport;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.ssl.SslContext;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * Rank 0's rendezvous server. Admits each rank once, checks its job token, world size and fingerprint against rank
 * 0's, and when all ranks joined sends everyone the data address of every rank. Afterwards it relays aborts: a rank
 * that reports a failure, or whose connection drops, is announced to all others so no rank waits for a dead ring.
 */
public final class Coordinator implements AutoCloseable {
    /** Largest Join accepted; it carries the caller's fingerprint (model config and code version). */
    public static final int MAX_JOIN_BYTES = 64 * 1024;
    /** How long a refused connection is read from, and ignored, so the refusal reaches the peer. */
    private static final long REFUSAL_LINGER_MILLIS = 1000;
    private static final System.Logger LOG = System.getLogger(Coordinator.class.getName());
    private static final int MAX_SHOWN_FINGERPRINT = 2_000;

    private final int worldSize;
    private final String fingerprint;
    private final JobToken token;
    private final Duration handshakeTimeout;
    private final Channel server;
    private final Map<Integer, Member> members = new TreeMap<>();
    private boolean welcomed;
    private String abortReason;

    private record Member(int rank, Channel channel, String dataHost, int dataPort) {
        String address() {
            return dataHost + ":" + dataPort;
        }
    }

    private Coordinator(Transport transport, String bindHost, int port, int worldSize, String fingerprint,
            JobToken token, TlsConfig tls, Duration handshakeTimeout, Duration peerTimeout) {
        this.worldSize = worldSize;
        this.fingerprint = fingerprint;
        this.token = token;
        this.handshakeTimeout = handshakeTimeout;
        SslContext ssl = tls == null ? null : tls.serverContext();
        var bootstrap = new ServerBootstrap()
                .group(transport.group())
                .channel(transport.serverChannel())
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (ssl != null) {
                            ch.pipeline().addLast("tls", ssl.newHandler(ch.alloc()));
                        }
                        ch.pipeline().addLast("frames", new FrameDecoder(MAX_JOIN_BYTES,
                                EnumSet.of(Header.BodyCase.JOIN, Header.BodyCase.ABORT, Header.BodyCase.HEARTBEAT)));
                        Heartbeats.install(ch.pipeline(), peerTimeout);
                        ch.pipeline().addLast("coordinator", new MemberHandler());
                    }
                });
        var bound = bootstrap.bind(bindHost, port).awaitUninterruptibly();
        if (!bound.isSuccess()) {
            throw new CollectiveException("rank 0 cannot run the coordinator on " + bindHost + ":" + port + ": "
                    + bound.cause().getMessage() + "; pick a free MASTER_PORT", bound.cause());
        }
        this.server = bound.channel();
    }

    /**
     * Starts listening.
     *
     * @param bindHost interface to listen on ("0.0.0.0" for all)
     * @param port port to listen on (0 picks a free one)
     * @param fingerprint rank 0's fingerprint; every rank must present the same
     * @param tls mutual TLS, or null for plain TCP
     * @param handshakeTimeout how long a new connection may take to send its Join
     * @param peerTimeout silence after which a joined rank counts as lost
     */
    public static Coordinator start(Transport transport, String bindHost, int port, int worldSize, String fingerprint,
            JobToken token, TlsConfig tls, Duration handshakeTimeout, Duration peerTimeout) {
        return new Coordinator(transport, bindHost, port, worldSize, fingerprint, token, tls, handshakeTimeout,
                peerTimeout);
    }

    /** The port actually bound. */
    public int port() {
        return ((InetSocketAddress) server.localAddress()).getPort();
    }

    @Override
    public void close() {
        server.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        synchronized (this) {
            members.values().forEach(m -> m.channel().close());
            members.clear();
        }
    }

    private synchronized void onJoin(Channel ch, Join join) {
        String from = String.valueOf(ch.remoteAddress());
        if (!token.matches(join.getToken().toByteArray())) {
            refuse(ch, "wrong job token from " + from + "; every rank must use the same ANVIL_JOB_TOKEN");
            return;
        }
        int rank = join.getRank();
        if (abortReason != null) {
            refuse(ch, abortReason);
            return;
        }
        if (welcomed) {
            refuse(ch, "the rendezvous already completed; rank " + rank + " joined too late or twice");
            return;
        }
        if (rank < 0 || rank >= worldSize) {
            refuse(ch, "rank " + rank + " is outside 0.." + (worldSize - 1) + " (world size " + worldSize
                    + " at rank 0); check RANK/SLURM_PROCID");
            return;
        }
        if (join.getWorldSize() != worldSize) {
            abortAll(ch, "rank " + rank + " announced world size " + join.getWorldSize() + " but rank 0 has "
                    + worldSize + "; launch every rank with the same WORLD_SIZE/SLURM_NTASKS");
            return;
        }
        Member existing = members.get(rank);
        if (existing != null && existing.channel().isActive()) {
            refuse(ch, "rank " + rank + " already joined from " + existing.channel().remoteAddress()
                    + "; two processes claim the same rank, check RANK/SLURM_PROCID");
            return;
        }
        if (!fingerprint.equals(join.getFingerprint())) {
            abortAll(ch, "fingerprint mismatch: rank " + rank + " differs from rank 0; rank 0 has '"
                    + shown(fingerprint) + "', rank " + rank + " has '" + shown(join.getFingerprint())
                    + "'; run every rank with the same model configuration and code version");
            return;
        }
        if (join.getDataPort() < 1 || join.getDataPort() > 65535 || join.getDataHost().isEmpty()) {
            refuse(ch, "rank " + rank + " announced an invalid data address " + join.getDataHost() + ":"
                    + join.getDataPort());
            return;
        }
        members.put(rank, new Member(rank, ch, join.getDataHost(), join.getDataPort()));
        ch.attr(MemberHandler.RANK).set(rank);
        if (members.size() == worldSize) {
            welcome();
        }
    }

    private void welcome() {
        Welcome.Builder welcome = Welcome.newBuilder();
        for (Member m : members.values()) {
            welcome.addPeers(PeerAddress.newBuilder().setRank(m.rank()).setHost(m.dataHost()).setPort(m.dataPort()));
        }
        Header header = Header.newBuilder().setWelcome(welcome).build();
        welcomed = true;
        for (Member m : members.values()) {
            m.channel().writeAndFlush(Frames.encode(m.channel().alloc(), header));
        }
        LOG.log(System.Logger.Level.DEBUG, "rendezvous of {0} ranks complete", worldSize);
    }

    private synchronized void onMemberLost(int rank, String reason) {
        Member m = members.get(rank);
        if (m == null || !welcomed) {
            members.remove(rank);
            return;
        }
        relayAbort(rank, Abort.newBuilder().setLostRank(rank)
                .setReason("rank " + rank + " (" + m.address() + ") " + reason).build());
    }

    private synchronized void relayAbort(int fromRank, Abort abort) {
        Header header = Header.newBuilder().setAbort(abort).build();
        for (Member m : members.values()) {
            if (m.rank() != fromRank && m.channel().isActive()) {
                m.channel().writeAndFlush(Frames.encode(m.channel().alloc(), header));
            }
        }
    }

    private void abortAll(Channel offender, String reason) {
        LOG.log(System.Logger.Level.WARNING, "rendezvous aborted: {0}", reason);
        abortReason = reason;
        refuse(offender, reason);
        members.values().forEach(m -> refuse(m.channel(), reason));
        members.clear();
    }

    /**
     * Tells the peer why it is refused and closes the connection once it has read that: after the Refused, output is
     * shut down and what the peer still sends is read and ignored for a moment, since closing with unread bytes
     * would reset the connection and destroy the Refused before the peer reads it.
     */
    private static void refuse(Channel ch, String reason) {
        LOG.log(System.Logger.Level.WARNING, "refusing {0}: {1}", ch.remoteAddress(), reason);
        ch.attr(MemberHandler.REFUSED).set(true);
        Header header = Header.newBuilder().setRefused(Refused.newBuilder().setReason(reason)).build();
        ch.writeAndFlush(Frames.encode(ch.alloc(), header)).addListener(f -> {
            if (f.isSuccess() && ch instanceof DuplexChannel duplex) {
                duplex.shutdownOutput();
                ch.eventLoop().schedule(() -> ch.close(), REFUSAL_LINGER_MILLIS, TimeUnit.MILLISECONDS);
            } else {
                ch.close();
            }
        });
    }

    private static String shown(String value) {
        return value.length() <= MAX_SHOWN_FINGERPRINT ? value : value.substring(0, MAX_SHOWN_FINGERPRINT) + "...";
    }

    /** One connection to the coordinator; it becomes a member once its Join is accepted. */
    private final class MemberHandler extends SimpleChannelInboundHandler<Header> {
        static final io.netty.util.AttributeKey<Integer> RANK = io.netty.util.AttributeKey.valueOf("anvil.rank");
        static final io.netty.util.AttributeKey<Boolean> REFUSED = io.netty.util.AttributeKey.valueOf("anvil.refused");

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            // A connection that never says who it is must not hold a slot forever.
            ctx.executor().schedule(() -> {
                if (ctx.channel().attr(RANK).get() == null && ctx.channel().isActive()) {
                    refuse(ctx.channel(), "no Join within " + handshakeTimeout.toMillis() + " ms");
                }
            }, handshakeTimeout.toMillis(), TimeUnit.MILLISECONDS);
            ctx.fireChannelActive();
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Header h) {
            if (ctx.channel().hasAttr(REFUSED)) {
                return; // read only so that closing does not reset the connection before the Refused is read
            }
            Integer rank = ctx.channel().attr(RANK).get();
            switch (h.getBodyCase()) {
                case JOIN -> {
                    if (rank != null) {
                        refuse(ctx.channel(), "rank " + rank + " sent a second Join");
                    } else {
                        onJoin(ctx.channel(), h.getJoin());
                    }
                }
                case ABORT -> {
                    if (rank == null) {
                        refuse(ctx.channel(), "Abort before Join");
                    } else {
                        relayAbort(rank, h.getAbort());
                    }
                }
                default -> refuse(ctx.channel(), "unexpected " + h.getBodyCase());
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (evt instanceof Heartbeats.PeerSilent silent) {
                Integer rank = ctx.channel().attr(RANK).get();
                if (rank == null) {
                    // Silent before its Join: refused as the handshake timer would, whichever fires first.
                    refuse(ctx.channel(), "no Join within " + silent.silence().toMillis() + " ms");
                    return;
                }
                onMemberLost(rank, "sent nothing for " + silent.silence().toMillis() + " ms (hung?)");
                ctx.close();
                return;
            }
            super.userEventTriggered(ctx, evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            Integer rank = ctx.channel().attr(RANK).get();
            if (rank != null) {
                onMemberLost(rank, "disconnected from the coordinator");
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (ctx.channel().hasAttr(REFUSED)) {
                return; // closing anyway
            }
            if (cause instanceof CorruptedFrameException bad) {
                refuse(ctx.channel(), bad.getMessage()); // tells the sender what was wrong, then closes
                return;
            }
            Integer rank = ctx.channel().attr(RANK).get();
            String who = rank == null ? String.valueOf(ctx.channel().remoteAddress()) : "rank " + rank;
            // A dropped member is reported through channelInactive; only protocol violations deserve a warning.
            System.Logger.Level level = cause instanceof java.io.IOException ? System.Logger.Level.DEBUG
                    : System.Logger.Level.WARNING;
            LOG.log(level, "closing coordinator connection from {0}: {1}", who, cause.toString());
            ctx.close();
        }
    }
}
