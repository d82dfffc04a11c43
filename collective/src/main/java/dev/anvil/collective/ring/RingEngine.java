package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.PeerLostException;
import dev.anvil.collective.ReduceOp;
import dev.anvil.collective.proto.Abort;
import dev.anvil.collective.proto.Chunk;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.transport.Frame;
import dev.anvil.collective.transport.Frames;
import dev.anvil.collective.transport.Heartbeats;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.EventLoop;
import io.netty.channel.SimpleChannelInboundHandler;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * Runs collectives over an established ring: chunks come from the left neighbour and go to the right one. All state
 * is confined to one event loop (the left connection's), so there are no locks on the data path; reductions run
 * there too, straight from the received bytes into the caller's buffer.
 *
 * <p>Ops are numbered in issue order. A chunk for an op this rank has not issued yet is held and reading from the
 * left neighbour pauses until it is issued, so a fast neighbour cannot make this process buffer without bound.
 *
 * <p>The first failure wins and breaks the engine: it fails every pending op, tells both neighbours and the
 * coordinator which rank was lost, and closes the ring. A watchdog fails the oldest op when it makes no progress
 * for the peer timeout, so no collective waits forever.
 */
public final class RingEngine implements RingOp.Sender {
    private static final System.Logger LOG = System.getLogger(RingEngine.class.getName());

    private final int rank;
    private final int ranks;
    private final int sliceBytes;
    private final Duration timeout;
    private final EventLoop loop;
    private final IntFunction<String> addressOf;
    private final Consumer<Abort> reportToCoordinator;
    private final ArrayDeque<RingOp> ops = new ArrayDeque<>();
    private final Map<Long, RingOp> bySeq = new HashMap<>();
    private final ArrayDeque<Frame> held = new ArrayDeque<>();
    private Channel left;
    private Channel right;
    private long nextSeq;
    private long postedUpTo = -1;
    private volatile CollectiveException failure;
    private volatile boolean closing;
    private CollectiveException departure;
    private ScheduledFuture<?> watchdog;

    /**
     * @param loop the event loop that owns this engine and the left connection
     * @param addressOf rank to "host:port", for error messages
     * @param reportToCoordinator sends an Abort to the coordinator so ranks outside the broken link hear of it
     */
    public RingEngine(int rank, int ranks, int sliceBytes, Duration timeout, EventLoop loop,
            IntFunction<String> addressOf, Consumer<Abort> reportToCoordinator) {
        this.rank = rank;
        this.ranks = ranks;
        this.sliceBytes = sliceBytes;
        this.timeout = timeout;
        this.loop = loop;
        this.addressOf = addressOf;
        this.reportToCoordinator = reportToCoordinator;
    }

    /**
     * Takes over the connection from the left neighbour once its handshake succeeded; call on the engine's loop, from
     * the handshake handler being replaced, so no chunk can slip past between the two.
     */
    public void attachLeft(Channel channel, ChannelHandler handshake) {
        left = channel;
        channel.pipeline().replace(handshake, "ring", new PeerHandler(true));
        if (failure != null) {
            closeRing();
        }
    }

    /** Takes over the connection to the right neighbour once its handshake succeeded; call from its handler. */
    public void attachRight(Channel channel, ChannelHandler handshake) {
        channel.pipeline().replace(handshake, "ring", new PeerHandler(false));
        onLoop(() -> {
            right = channel;
            if (failure != null) {
                closeRing();
            }
        });
    }

    /** Starts the watchdog; call once both neighbours are attached. */
    public void start() {
        long period = Math.max(10, timeout.toMillis() / 8);
        watchdog = loop.scheduleAtFixedRate(this::watchdog, period, period, TimeUnit.MILLISECONDS);
    }

    /** Issues an all-reduce; see {@code Communicator#allReduceAsync}. */
    public CompletableFuture<Void> allReduce(MemorySegment buf, ElementType type, ReduceOp op) {
        synchronized (this) {
            return submit(RingOp.allReduce(nextSeq++, buf, type, op, rank, ranks, sliceBytes));
        }
    }

    /** Issues a reduce-scatter; see {@code Communicator#reduceScatterAsync}. */
    public CompletableFuture<Void> reduceScatter(MemorySegment buf, ElementType type, ReduceOp op) {
        synchronized (this) {
            return submit(RingOp.reduceScatter(nextSeq++, buf, type, op, rank, ranks, sliceBytes));
        }
    }

    /** Issues an all-gather; see {@code Communicator#allGatherAsync}. */
    public CompletableFuture<Void> allGather(MemorySegment buf, ElementType type) {
        synchronized (this) {
            return submit(RingOp.allGather(nextSeq++, buf, type, rank, ranks, sliceBytes));
        }
    }

    /** Issues a broadcast; see {@code Communicator#broadcastAsync}. */
    public CompletableFuture<Void> broadcast(MemorySegment buf, int root) {
        synchronized (this) {
            return submit(RingOp.broadcast(nextSeq++, buf, root, rank, ranks, sliceBytes));
        }
    }

    // Called under the lock so ops reach the loop in issue order.
    private CompletableFuture<Void> submit(RingOp op) {
        CollectiveException f = failure;
        if (f != null) {
            op.future.completeExceptionally(f);
            return op.future;
        }
        try {
            loop.execute(() -> post(op));
        } catch (RejectedExecutionException e) {
            op.future.completeExceptionally(new CollectiveException("the communicator's network threads stopped", e));
        }
        return op.future;
    }

    /** Breaks the ring because of {@code cause}; idempotent, callable from any thread. */
    public void fail(CollectiveException cause) {
        if (loop.inEventLoop()) {
            failOnLoop(cause);
        } else {
            try {
                loop.execute(() -> failOnLoop(cause));
            } catch (RejectedExecutionException e) {
                failure = cause;
            }
        }
    }

    /**
     * From now on a lost neighbour is expected (the whole job is shutting down): failures are not logged or relayed.
     */
    public void quiesce() {
        closing = true;
    }

    /**
     * A neighbour's connection closed, or the coordinator reported a rank gone; callable from any thread. Breaks the
     * ring at once, unless the job is shutting down ({@link #quiesce}) and collectives are pending: a rank leaves
     * only after its last collective completed, so whatever they still need from it has already arrived or is in
     * flight. They complete first, then the ring closes; the watchdog still bounds the wait.
     */
    public void peerGone(CollectiveException cause) {
        onLoop(() -> {
            if (closing && !ops.isEmpty()) {
                if (departure == null) {
                    departure = cause;
                }
            } else {
                failOnLoop(cause);
            }
        });
    }

    /** Closes the ring; pending ops fail and neighbours see this rank as lost. */
    public void close() {
        closing = true;
        fail(new CollectiveException("the communicator of rank " + rank + " was closed"));
    }

    /** The failure that broke the ring, or null. */
    public CollectiveException failure() {
        return failure;
    }

    private void post(RingOp op) {
        if (failure != null) {
            op.future.completeExceptionally(failure);
            return;
        }
        ops.add(op);
        bySeq.put(op.seq, op);
        postedUpTo = op.seq;
        op.start(this, System.nanoTime());
        drainHeld();
        completeFinished();
    }

    @Override
    public void send(RingOp op, int step, int slice, MemorySegment region) {
        ByteBuf header = Frames.encode(right.alloc(),
                Header.newBuilder().setChunk(op.header(step, slice, region.byteSize())).build());
        // Zero copy: the slice is written straight from the caller's buffer. The ring's data dependencies
        // guarantee the right neighbour consumed it before this rank overwrites it.
        ByteBuf payload = region.byteSize() == 0 ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(region.asByteBuffer());
        op.pendingWrites++;
        ChannelFuture written = right.writeAndFlush(Unpooled.wrappedBuffer(header, payload));
        written.addListener(f -> onLoop(() -> {
            op.pendingWrites--;
            op.lastProgressNanos = System.nanoTime();
            if (!f.isSuccess()) {
                failOnLoop(lost(false, "sending to it failed: " + f.cause()));
            }
            completeFinished();
        }));
    }

    private void onChunk(Frame frame) {
        Chunk c = frame.header().getChunk();
        if (!held.isEmpty() || c.getOpSeq() > postedUpTo) {
            held.add(frame);
            left.config().setAutoRead(false);
            return;
        }
        try {
            op(c).onChunk(c, payloadSegment(frame.payload()), this, who(true), System.nanoTime());
        } catch (CollectiveException e) {
            failOnLoop(new PeerLostException(leftRank(), addressOf.apply(leftRank()), e.getMessage()));
        } finally {
            frame.payload().release();
        }
        completeFinished();
    }

    private void drainHeld() {
        while (!held.isEmpty() && held.peek().header().getChunk().getOpSeq() <= postedUpTo && failure == null) {
            Frame f = held.poll();
            Chunk c = f.header().getChunk();
            try {
                op(c).onChunk(c, payloadSegment(f.payload()), this, who(true), System.nanoTime());
            } catch (CollectiveException e) {
                failOnLoop(new PeerLostException(leftRank(), addressOf.apply(leftRank()), e.getMessage()));
            } finally {
                f.payload().release();
            }
        }
        if (held.isEmpty() && left != null && failure == null) {
            left.config().setAutoRead(true);
        }
    }

    private RingOp op(Chunk c) {
        RingOp op = bySeq.get(c.getOpSeq());
        if (op == null) {
            throw new CollectiveException(who(true) + " sent a chunk for collective #" + c.getOpSeq()
                    + ", which this rank already completed");
        }
        return op;
    }

    private static MemorySegment payloadSegment(ByteBuf payload) {
        if (payload.nioBufferCount() == 1) {
            return MemorySegment.ofBuffer(payload.nioBuffer());
        }
        byte[] copy = new byte[payload.readableBytes()];
        payload.getBytes(payload.readerIndex(), copy);
        return MemorySegment.ofArray(copy);
    }

    // Futures complete strictly in issue order, even when a later op finishes first.
    private void completeFinished() {
        while (!ops.isEmpty() && ops.peek().isDone()) {
            RingOp op = ops.poll();
            bySeq.remove(op.seq);
            op.future.complete(null);
        }
        if (departure != null && ops.isEmpty()) {
            failOnLoop(departure);
        }
    }

    private void watchdog() {
        RingOp oldest = ops.peek();
        if (failure != null || oldest == null) {
            return;
        }
        long idle = System.nanoTime() - oldest.lastProgressNanos;
        if (idle > timeout.toNanos()) {
            failOnLoop(new PeerLostException(leftRank(), addressOf.apply(leftRank()), oldest.describe()
                    + " made no progress for " + TimeUnit.NANOSECONDS.toMillis(idle) + " ms waiting for rank "
                    + leftRank() + " (left neighbour); a rank hung, died, or did not issue the same collective"));
        }
    }

    private void failOnLoop(CollectiveException cause) {
        if (failure != null) {
            return;
        }
        failure = cause;
        if (watchdog != null) {
            watchdog.cancel(false);
        }
        if (!closing) {
            LOG.log(System.Logger.Level.WARNING, "rank {0}: ring broken: {1}", rank, cause.getMessage());
            Abort abort = Abort.newBuilder()
                    .setLostRank(cause instanceof PeerLostException p ? p.lostRank() : rank)
                    .setReason(cause instanceof PeerLostException p ? p.reason() : cause.getMessage())
                    .build();
            reportToCoordinator.accept(abort);
            Header header = Header.newBuilder().setAbort(abort).build();
            for (Channel ch : new Channel[] {left, right}) {
                if (ch != null && ch.isActive()) {
                    ch.writeAndFlush(Frames.encode(ch.alloc(), header));
                }
            }
        }
        for (RingOp op : ops) {
            op.future.completeExceptionally(cause);
        }
        ops.clear();
        bySeq.clear();
        held.forEach(f -> f.payload().release());
        held.clear();
        closeRing();
    }

    private void closeRing() {
        // Close after the Abort frames were flushed, so neighbours learn the lost rank rather than just "closed".
        for (Channel ch : new Channel[] {left, right}) {
            if (ch != null) {
                ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> ch.close());
            }
        }
    }

    private void onLoop(Runnable task) {
        if (loop.inEventLoop()) {
            task.run();
        } else {
            try {
                loop.execute(task);
            } catch (RejectedExecutionException e) {
                // The network threads are stopping, after close(): this rank has nothing left to fail or report.
                // (Its other event loop may still close a channel and tell us so.)
            }
        }
    }

    private int leftRank() {
        return Math.floorMod(rank - 1, ranks);
    }

    private int rightRank() {
        return Math.floorMod(rank + 1, ranks);
    }

    private String who(boolean fromLeft) {
        int r = fromLeft ? leftRank() : rightRank();
        return "rank " + r + " (" + addressOf.apply(r) + ")";
    }

    private PeerLostException lost(boolean isLeft, String reason) {
        int r = isLeft ? leftRank() : rightRank();
        return new PeerLostException(r, addressOf.apply(r), reason);
    }

    /** Inbound side of a neighbour connection after its handshake. */
    private final class PeerHandler extends SimpleChannelInboundHandler<Frame> {
        private final boolean isLeft;

        PeerHandler(boolean isLeft) {
            super(false);
            this.isLeft = isLeft;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Frame frame) {
            onLoop(() -> handle(frame));
        }

        private void handle(Frame frame) {
            Header h = frame.header();
            switch (h.getBodyCase()) {
                case CHUNK -> {
                    if (isLeft && failure == null) {
                        onChunk(frame);
                    } else {
                        frame.payload().release();
                    }
                }
                case ABORT -> {
                    int lostRank = h.getAbort().getLostRank();
                    String address = lostRank >= 0 && lostRank < ranks ? addressOf.apply(lostRank) : "unknown";
                    failOnLoop(new PeerLostException(lostRank, address, h.getAbort().getReason()));
                }
                default -> failOnLoop(lost(isLeft, "sent unexpected " + h.getBodyCase() + " on the ring"));
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (evt instanceof Heartbeats.PeerSilent silent) {
                onLoop(() -> {
                    // While reading is paused on purpose the peer's heartbeats cannot arrive; its data proves it alive.
                    if (!(isLeft && !held.isEmpty())) {
                        failOnLoop(lost(isLeft, "sent nothing, not even a heartbeat, for "
                                + silent.silence().toMillis() + " ms (hung or frozen?)"));
                    }
                });
                return;
            }
            super.userEventTriggered(ctx, evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            peerGone(lost(isLeft, "connection closed (process died or closed its communicator)"));
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            String why = cause.getCause() != null && cause instanceof io.netty.handler.codec.DecoderException
                    ? cause.getCause().getMessage() : cause.toString();
            if (cause instanceof java.io.IOException) {
                peerGone(lost(isLeft, why)); // a reset connection: the peer went away, like channelInactive
            } else {
                onLoop(() -> failOnLoop(lost(isLeft, why)));
            }
            ctx.close();
        }
    }
}
