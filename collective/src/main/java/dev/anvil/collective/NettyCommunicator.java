package dev.anvil.collective;

import dev.anvil.collective.proto.Abort;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.PeerAddress;
import dev.anvil.collective.rendezvous.ControlListener;
import dev.anvil.collective.rendezvous.Coordinator;
import dev.anvil.collective.rendezvous.RendezvousClient;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.collective.ring.RingEngine;
import dev.anvil.collective.ring.RingHandshake;
import dev.anvil.collective.transport.Connector;
import dev.anvil.collective.transport.FrameDecoder;
import dev.anvil.collective.transport.Frames;
import dev.anvil.collective.transport.Heartbeats;
import dev.anvil.collective.transport.Transport;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.handler.ssl.SslContext;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Function;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@link Communicator} over Netty: rendezvous through rank 0's {@link Coordinator}, then a TCP ring where each rank
 * sends to its right neighbour and receives from its left one. See {@link #connect}.
 */
public final class NettyCommunicator implements Communicator, ControlListener {
    private final RendezvousConfig config;
    private final CommunicatorOptions options;
    private final Transport transport;
    private final boolean ownsTransport;
    private final EventLoop loop;
    private final RingEngine engine;
    private final Thread loopThread;
    private Channel server;
    private Coordinator coordinator;
    private volatile Channel control;
    private volatile List<PeerAddress> peers = List.of();
    private volatile boolean closed;

    private NettyCommunicator(RendezvousConfig config, CommunicatorOptions options) {
        this.config = config;
        this.options = options;
        this.ownsTransport = options.transport() == null;
        this.transport = ownsTransport ? Transport.create(2) : options.transport();
        this.loop = transport.group().next();
        this.engine = new RingEngine(config.rank(), config.worldSize(), options.sliceBytes(), options.peerTimeout(),
                loop, this::addressOf, this::reportAbort);
        try {
            this.loopThread = loop.submit(Thread::currentThread).get(10, TimeUnit.SECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException e) {
            throw new CollectiveException("the network threads did not start", e);
        }
    }

    /**
     * Joins the job described by {@code config} and connects the ring; blocks until every rank did, or fails after
     * {@link CommunicatorOptions#rendezvousTimeout}. Rank 0 also runs the coordinator on the master port.
     *
     * @return a connected communicator (a trivial one for world size 1)
     * @throws CollectiveException naming what to fix: refused token, fingerprint mismatch, unreachable master, ...
     */
    public static Communicator connect(RendezvousConfig config, CommunicatorOptions options) {
        if (config.worldSize() == 1) {
            return new SingleRankCommunicator();
        }
        NettyCommunicator c = new NettyCommunicator(config, options);
        try {
            c.establish();
            return c;
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    private void establish() {
        Instant deadline = Instant.now().plus(options.rendezvousTimeout());
        int rank = config.rank();
        int ranks = config.worldSize();
        SslContext serverSsl = options.tls() == null ? null : options.tls().serverContext();
        SslContext clientSsl = options.tls() == null ? null : options.tls().clientContext();
        Duration handshake = handshakeTimeout();
        RingHandshake.AcceptState accepted = new RingHandshake.AcceptState();

        var bound = new ServerBootstrap()
                .group(transport.group(), loop) // accepted connections live on the engine's loop: no hand-offs
                .channel(transport.serverChannel())
                .childOption(ChannelOption.TCP_NODELAY, true)
                // Read whole slices at once when they are there: fewer reads, fewer cumulation copies.
                .childOption(ChannelOption.RCVBUF_ALLOCATOR, new AdaptiveRecvByteBufAllocator(4096, 65536, 1 << 20))
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (serverSsl != null) {
                            ch.pipeline().addLast("tls", serverSsl.newHandler(ch.alloc()));
                        }
                        ch.pipeline().addLast("frames", new FrameDecoder(RingHandshake.MAX_HEADER_BYTES, 0,
                                RingHandshake.BEFORE_HELLO));
                        Heartbeats.install(ch.pipeline(), options.peerTimeout());
                        ch.pipeline().addLast("handshake", new RingHandshake.Accept(rank, ranks,
                                options.sliceBytes(), options.token(), handshake, engine, accepted));
                    }
                })
                .bind(options.bindHost(), options.dataPort())
                .awaitUninterruptibly();
        if (!bound.isSuccess()) {
            throw new CollectiveException("rank " + rank + " cannot listen on " + options.bindHost() + ":"
                    + options.dataPort() + ": " + bound.cause().getMessage(), bound.cause());
        }
        server = bound.channel();
        int dataPort = ((InetSocketAddress) server.localAddress()).getPort();

        if (rank == 0) {
            coordinator = Coordinator.start(transport, options.bindHost(), config.masterPort(), ranks,
                    options.fingerprint(), options.token(), options.tls(), handshake, options.peerTimeout());
        }
        RendezvousClient.Joined joined = RendezvousClient.join(transport, config, options.token(),
                options.fingerprint(), options.tls(), options.advertiseHost(), dataPort, deadline,
                options.peerTimeout(), this);
        control = joined.control();
        peers = joined.peers();

        int rightRank = (rank + 1) % ranks;
        PeerAddress right = peers.get(rightRank);
        String rightName = "rank " + rightRank + " (" + addressOf(rightRank) + ")";
        RingHandshake.Connect connect = new RingHandshake.Connect(rank, ranks, options.sliceBytes(),
                options.token(), engine, rightName);
        Connector.connect(transport, right.getHost(), right.getPort(), new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                if (clientSsl != null) {
                    ch.pipeline().addLast("tls", clientSsl.newHandler(ch.alloc(), right.getHost(), right.getPort()));
                }
                ch.pipeline().addLast("frames", new FrameDecoder(RingHandshake.MAX_HEADER_BYTES, 0,
                        RingHandshake.BEFORE_ACK));
                Heartbeats.install(ch.pipeline(), options.peerTimeout());
                ch.pipeline().addLast("handshake", connect);
            }
        }, deadline, rightName);
        await(connect.right(), deadline, rightName + " did not accept the ring connection");
        int leftRank = Math.floorMod(rank - 1, ranks);
        await(accepted.left(), deadline, "rank " + leftRank + " (" + addressOf(leftRank)
                + ") did not connect to this rank's ring port " + dataPort);
        CollectiveException early = engine.failure();
        if (early != null) {
            throw early;
        }
        engine.start();
    }

    private Duration handshakeTimeout() {
        Duration tenSeconds = Duration.ofSeconds(10);
        return options.peerTimeout().compareTo(tenSeconds) < 0 ? options.peerTimeout() : tenSeconds;
    }

    private static <T> T await(CompletableFuture<T> future, Instant deadline, String timeoutMessage) {
        try {
            long millis = Math.max(1, Duration.between(Instant.now(), deadline).toMillis());
            return future.get(millis, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new CollectiveException(timeoutMessage + " before the rendezvous deadline");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof CollectiveException c ? c
                    : new CollectiveException(timeoutMessage + ": " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException("interrupted while connecting the ring", e);
        }
    }

    @Override
    public int rank() {
        return config.rank();
    }

    @Override
    public int worldSize() {
        return config.worldSize();
    }

    /** Port of this rank's ring listener (for tests and diagnostics). */
    public int dataPort() {
        return ((InetSocketAddress) server.localAddress()).getPort();
    }

    /** Port of the coordinator, on rank 0 only; -1 elsewhere. */
    public int coordinatorPort() {
        return coordinator == null ? -1 : coordinator.port();
    }

    /**
     * {@inheritDoc}
     *
     * <p>The future completes on a network thread: dependent actions must not block.
     */
    @Override
    public CompletableFuture<Void> allReduceAsync(MemorySegment buf, ElementType type, ReduceOp op) {
        checkBuffer(buf, type);
        checkAccess(buf);
        return addressable(buf, segment -> engine.allReduce(segment, type, op));
    }

    /**
     * {@inheritDoc}
     *
     * <p>The future completes on a network thread: dependent actions must not block.
     */
    @Override
    public CompletableFuture<Void> reduceScatterAsync(MemorySegment buf, ElementType type, ReduceOp op) {
        checkBuffer(buf, type);
        checkAccess(buf);
        return addressable(buf, segment -> engine.reduceScatter(segment, type, op));
    }

    /**
     * {@inheritDoc}
     *
     * <p>The future completes on a network thread: dependent actions must not block.
     */
    @Override
    public CompletableFuture<Void> allGatherAsync(MemorySegment buf, ElementType type) {
        checkBuffer(buf, type);
        checkAccess(buf);
        return addressable(buf, segment -> engine.allGather(segment, type));
    }

    /**
     * {@inheritDoc}
     *
     * <p>The future completes on a network thread: dependent actions must not block.
     */
    @Override
    public CompletableFuture<Void> broadcastAsync(MemorySegment buf, int root) {
        checkRoot(root, worldSize());
        checkAccess(buf);
        return addressable(buf, segment -> engine.broadcast(segment, root));
    }

    /**
     * Runs {@code collective} on {@code buf}, through a native copy when {@code buf} is a heap
     * segment over an array other than {@code byte[]} (a {@code float[]}, say): the Vector API and
     * Netty can only address native memory and byte arrays.
     */
    private static CompletableFuture<Void> addressable(MemorySegment buf,
                                                       Function<MemorySegment, CompletableFuture<Void>> collective) {
        if (buf.isNative() || buf.heapBase().orElse(null) instanceof byte[]) {
            return collective.apply(buf);
        }
        Arena arena = Arena.ofShared();
        MemorySegment staged = arena.allocate(buf.byteSize(), Long.BYTES);
        staged.copyFrom(buf);
        return collective.apply(staged).whenComplete((ok, failure) -> {
            try {
                if (failure == null) {
                    buf.copyFrom(staged);
                }
            } finally {
                arena.close();
            }
        });
    }

    @Override
    public void barrier() {
        // An all-reduce completes on a rank only after every rank contributed to it, which is a barrier.
        Communicator.await(engine.allReduce(Arena.ofAuto().allocate(4), ElementType.FLOAT32, ReduceOp.SUM));
    }

    /** Tells this rank the whole job is shutting down, so neighbours closing first is no failure worth a warning. */
    void quiesce() {
        engine.quiesce();
    }

    @Override
    public void finish() {
        // Quiesce before the barrier: a rank that completes it first may leave while this one still awaits its last
        // slice, which is already on the wire.
        quiesce();
        barrier();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        engine.close();
        if (control != null) {
            control.close().awaitUninterruptibly(2, TimeUnit.SECONDS);
        }
        if (server != null) {
            server.close().awaitUninterruptibly(2, TimeUnit.SECONDS);
        }
        if (coordinator != null) {
            coordinator.close();
        }
        if (ownsTransport) {
            transport.close();
        }
    }

    @Override
    public void onAbort(int lostRank, String reason) {
        String address = lostRank >= 0 && lostRank < worldSize() ? addressOf(lostRank) : "unknown";
        engine.peerGone(new PeerLostException(lostRank, address, reason));
    }

    @Override
    public void onCoordinatorLost(String reason) {
        if (!closed) {
            engine.peerGone(new PeerLostException(0, config.masterHost() + ":" + config.masterPort(), reason
                    + " (rank 0 runs the coordinator)"));
        }
    }

    private void reportAbort(Abort abort) {
        Channel ch = control;
        if (ch != null && ch.isActive()) {
            ch.writeAndFlush(Frames.encode(ch.alloc(), Header.newBuilder().setAbort(abort).build()));
        }
    }

    private String addressOf(int rank) {
        List<PeerAddress> known = peers;
        if (rank < 0 || rank >= known.size()) {
            return "unknown";
        }
        PeerAddress p = known.get(rank);
        return p.getHost() + ":" + p.getPort();
    }

    private void checkAccess(MemorySegment buf) {
        if (!buf.isAccessibleBy(loopThread)) {
            throw new IllegalArgumentException("the buffer belongs to a confined arena, but the network threads read"
                    + " and write it; allocate it with Arena.ofShared(), Arena.ofAuto() or Arena.global()");
        }
    }

    static void checkBuffer(MemorySegment buf, ElementType type) {
        if (buf.isReadOnly()) {
            throw new IllegalArgumentException("the collective writes its result into the buffer, which is read-only");
        }
        if (buf.byteSize() % type.byteSize() != 0) {
            throw new IllegalArgumentException("buffer of " + buf.byteSize() + " bytes is not a whole number of "
                    + type + " elements (" + type.byteSize() + " bytes each)");
        }
    }

    static void checkRoot(int root, int worldSize) {
        if (root < 0 || root >= worldSize) {
            throw new IllegalArgumentException("broadcast root " + root + " is not a rank in 0.." + (worldSize - 1));
        }
    }
}
