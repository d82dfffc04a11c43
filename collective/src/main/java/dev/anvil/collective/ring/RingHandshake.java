package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Hello;
import dev.anvil.collective.proto.HelloAck;
import dev.anvil.collective.proto.Refused;
import dev.anvil.collective.transport.Frame;
import dev.anvil.collective.transport.FrameDecoder;
import dev.anvil.collective.transport.Frames;
import com.google.protobuf.ByteString;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/**
 * The ring connection handshake. The rank connecting to its right neighbour sends Hello (rank, world size, job
 * token, slice size); the neighbour checks every field, the token in constant time, and answers HelloAck or Refused.
 * Until then the connection may carry no payload at all, so an outsider cannot make a rank allocate.
 */
public final class RingHandshake {
    /** Largest header on a ring connection: chunks, hellos and aborts are all small. */
    public static final int MAX_HEADER_BYTES = 4096;
    /** What an unauthenticated ring connection may send. */
    public static final Set<Header.BodyCase> BEFORE_HELLO = EnumSet.of(Header.BodyCase.HELLO,
            Header.BodyCase.HEARTBEAT);
    private static final Set<Header.BodyCase> FROM_LEFT = EnumSet.of(Header.BodyCase.CHUNK,
            Header.BodyCase.HEARTBEAT, Header.BodyCase.ABORT);
    private static final Set<Header.BodyCase> FROM_RIGHT = EnumSet.of(Header.BodyCase.HEARTBEAT,
            Header.BodyCase.ABORT);
    /** What the connecting side may receive before the HelloAck. */
    public static final Set<Header.BodyCase> BEFORE_ACK = EnumSet.of(Header.BodyCase.HELLO_ACK,
            Header.BodyCase.REFUSED, Header.BodyCase.HEARTBEAT, Header.BodyCase.ABORT);
    private static final System.Logger LOG = System.getLogger(RingHandshake.class.getName());

    private RingHandshake() {
    }

    /** Shared by the accepted connections of one rank's ring server; all run on the engine's loop. */
    public static final class AcceptState {
        final CompletableFuture<Channel> left = new CompletableFuture<>();
        private boolean claimed;

        /** Completes with the left neighbour's connection. */
        public CompletableFuture<Channel> left() {
            return left;
        }
    }

    /** Server side: admits exactly one connection, from the left neighbour. */
    public static final class Accept extends SimpleChannelInboundHandler<Frame> {
        private final int rank;
        private final int ranks;
        private final int sliceBytes;
        private final JobToken token;
        private final Duration handshakeTimeout;
        private final RingEngine engine;
        private final AcceptState state;
        private boolean done;

        public Accept(int rank, int ranks, int sliceBytes, JobToken token, Duration handshakeTimeout,
                RingEngine engine, AcceptState state) {
            this.rank = rank;
            this.ranks = ranks;
            this.sliceBytes = sliceBytes;
            this.token = token;
            this.handshakeTimeout = handshakeTimeout;
            this.engine = engine;
            this.state = state;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ctx.executor().schedule(() -> {
                if (!done && ctx.channel().isActive()) {
                    refuse(ctx.channel(), "no Hello within " + handshakeTimeout.toMillis() + " ms");
                }
            }, handshakeTimeout.toMillis(), TimeUnit.MILLISECONDS);
            ctx.fireChannelActive();
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Frame frame) {
            Header h = frame.header();
            if (h.getBodyCase() != Header.BodyCase.HELLO) {
                refuse(ctx.channel(), "expected Hello, got " + h.getBodyCase());
                return;
            }
            Hello hello = h.getHello();
            int leftRank = Math.floorMod(rank - 1, ranks);
            String problem;
            if (!token.matches(hello.getToken().toByteArray())) {
                problem = "wrong job token; every rank must use the same ANVIL_JOB_TOKEN";
            } else if (hello.getWorldSize() != ranks) {
                problem = "world size " + hello.getWorldSize() + " but rank " + rank + " has " + ranks;
            } else if (hello.getRank() != leftRank) {
                problem = "rank " + hello.getRank() + " connected but rank " + rank + "'s left neighbour is rank "
                        + leftRank;
            } else if (hello.getSliceBytes() != sliceBytes) {
                problem = "slice size " + hello.getSliceBytes() + " but rank " + rank + " uses " + sliceBytes
                        + "; use the same sliceBytes option on every rank";
            } else if (state.claimed) {
                problem = "rank " + rank + "'s left neighbour is already connected";
            } else {
                problem = null;
            }
            if (problem != null) {
                refuse(ctx.channel(), problem);
                return;
            }
            done = true;
            state.claimed = true;
            ctx.pipeline().get(FrameDecoder.class).relimit(sliceBytes, FROM_LEFT);
            ctx.writeAndFlush(Frames.encode(ctx.alloc(),
                    Header.newBuilder().setHelloAck(HelloAck.newBuilder().setRank(rank)).build()));
            engine.attachLeft(ctx.channel(), this);
            state.left.complete(ctx.channel());
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.log(System.Logger.Level.WARNING, "rank {0}: closing ring connection from {1}: {2}", rank,
                    ctx.channel().remoteAddress(), cause.getCause() != null ? cause.getCause() : cause);
            ctx.close();
        }

        private void refuse(Channel ch, String reason) {
            LOG.log(System.Logger.Level.WARNING, "rank {0}: refusing ring connection from {1}: {2}", rank,
                    ch.remoteAddress(), reason);
            done = true;
            ch.writeAndFlush(Frames.encode(ch.alloc(),
                    Header.newBuilder().setRefused(Refused.newBuilder().setReason(reason)).build()))
                    .addListener(ChannelFutureListener.CLOSE);
        }
    }

    /**
     * Client side: introduces this rank to its right neighbour. Sharable because each connect attempt installs it;
     * only the attempt that connects ever sees events.
     */
    @io.netty.channel.ChannelHandler.Sharable
    public static final class Connect extends SimpleChannelInboundHandler<Frame> {
        private final int rank;
        private final int ranks;
        private final int sliceBytes;
        private final JobToken token;
        private final RingEngine engine;
        private final String peer;
        private final CompletableFuture<Channel> right = new CompletableFuture<>();

        /** @param peer "rank N (host:port)", for error messages */
        public Connect(int rank, int ranks, int sliceBytes, JobToken token, RingEngine engine, String peer) {
            this.rank = rank;
            this.ranks = ranks;
            this.sliceBytes = sliceBytes;
            this.token = token;
            this.engine = engine;
            this.peer = peer;
        }

        /** Completes with the connection once the right neighbour accepted it. */
        public CompletableFuture<Channel> right() {
            return right;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            Hello hello = Hello.newBuilder()
                    .setRank(rank)
                    .setWorldSize(ranks)
                    .setToken(ByteString.copyFrom(token.bytes()))
                    .setSliceBytes(sliceBytes)
                    .build();
            ctx.writeAndFlush(Frames.encode(ctx.alloc(), Header.newBuilder().setHello(hello).build()));
            ctx.fireChannelActive();
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Frame frame) {
            Header h = frame.header();
            switch (h.getBodyCase()) {
                case HELLO_ACK -> {
                    int expected = Math.floorMod(rank + 1, ranks);
                    if (h.getHelloAck().getRank() != expected) {
                        fail(ctx, peer + " answered as rank " + h.getHelloAck().getRank());
                        return;
                    }
                    ctx.pipeline().get(FrameDecoder.class).relimit(0, FROM_RIGHT);
                    engine.attachRight(ctx.channel(), this);
                    right.complete(ctx.channel());
                }
                case REFUSED -> fail(ctx, peer + " refused the ring connection: " + h.getRefused().getReason());
                case ABORT -> fail(ctx, "ring aborted during the handshake: " + h.getAbort().getReason());
                default -> ctx.fireChannelRead(frame);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            right.completeExceptionally(new CollectiveException(peer + " closed the ring connection during the"
                    + " handshake"));
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            Throwable root = cause.getCause() instanceof SSLException ssl ? ssl : cause;
            fail(ctx, "ring connection to " + peer + " failed: " + root.getMessage()
                    + (root instanceof SSLException ? "; check that both nodes' certificates are signed by the job CA"
                            : ""));
        }

        private void fail(ChannelHandlerContext ctx, String message) {
            right.completeExceptionally(new CollectiveException(message));
            ctx.close();
        }
    }
}
