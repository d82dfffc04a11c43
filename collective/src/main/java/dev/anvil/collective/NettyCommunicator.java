package dev.anvil.collective;

import dev.anvil.collective.link.Connection;
import dev.anvil.collective.link.HostIdentity;
import dev.anvil.collective.proto.Abort;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.PeerAddress;
import dev.anvil.collective.rendezvous.ControlListener;
import dev.anvil.collective.rendezvous.Coordinator;
import dev.anvil.collective.rendezvous.RendezvousClient;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.collective.ring.RingEngine;
import dev.anvil.collective.ring.RingHandshake;
import dev.anvil.collective.ring.RingListener;
import dev.anvil.collective.transport.Frames;
import dev.anvil.collective.transport.Transport;
import io.netty.channel.Channel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@link Communicator} with a Netty control plane and a ring data plane: rendezvous through rank 0's
 * {@link Coordinator} (Netty, epoll where available), then {@link CommunicatorOptions#channels} rings side by side,
 * each rank sending to its right neighbour and receiving from its left one over connections served by threads of
 * their own ({@link RingEngine}). See {@link #connect}.
 */
public final class NettyCommunicator implements Communicator, ControlListener {
    private static final System.Logger LOG = System.getLogger(NettyCommunicator.class.getName());
    /** Never started: a buffer it may access is not confined to its creator's thread. */
    private static final Thread ANOTHER_THREAD = Thread.ofPlatform().unstarted(() -> { });

    private final RendezvousConfig config;
    private final CommunicatorOptions options;
    private final Transport transport;
    private final boolean ownsTransport;
    private final int channels;
    private RingListener listener;
    private RingEngine engine;
    private CollectiveException pendingFailure;
    private Coordinator coordinator;
    private volatile Channel control;
    private volatile List<PeerAddress> peers = List.of();
    private volatile boolean closed;

    private NettyCommunicator(RendezvousConfig config, CommunicatorOptions options) {
        this.config = config;
        this.options = options;
        this.ownsTransport = options.transport() == null;
        this.transport = ownsTransport ? Transport.create(1) : options.transport();
        this.channels = options.resolvedChannels();
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
        Duration handshake = handshakeTimeout();
        RingHandshake.Tls tls = options.tls() == null ? null
                : new RingHandshake.Tls(options.tls().serverContext(), options.tls().clientContext());
        RingHandshake.Terms terms = new RingHandshake.Terms(rank, ranks, options.sliceBytes(), channels,
                options.token(), tls, options.dataTransport(), HostIdentity.local());
        listener = RingListener.open(options.bindHost(), options.dataPort(), terms, handshake);
        int dataPort = listener.port();

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
        int leftRank = Math.floorMod(rank - 1, ranks);
        List<RingEngine.Links> links = new ArrayList<>();
        try {
            for (int c = 0; c < channels; c++) {
                Connection toRight = RingHandshake.connect(right.getHost(), right.getPort(), terms, c, rightName,
                        deadline);
                links.add(new RingEngine.Links(null, toRight));
            }
            for (int c = 0; c < channels; c++) {
                await(listener.channel(c), deadline, "rank " + leftRank + " (" + addressOf(leftRank)
                        + ") did not connect channel " + c + " to this rank's ring port " + dataPort);
                links.set(c, new RingEngine.Links(listener.take(c), links.get(c).toRight()));
            }
        } catch (RuntimeException e) {
            links.forEach(l -> l.toRight().close());
            throw e;
        }
        CollectiveException early;
        synchronized (this) {
            engine = new RingEngine(rank, ranks, options.sliceBytes(), options.peerTimeout(), links,
                    this::addressOf, this::reportAbort);
            early = pendingFailure;
        }
        if (early != null) {
            engine.fail(early);
            throw early;
        }
        engine.start();
        LOG.log(System.Logger.Level.INFO, "rank {0} of {1}: control plane on netty {2}, {3} ring channel(s) of"
                + " {4}-byte slices:{5}", rank, ranks, transport.kind(), channels,
                String.valueOf(options.sliceBytes()), engine.threadMap());
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
        return listener.port();
    }

    /** How each channel's data arrives from the left neighbour: "tcp", "tls" or "shm" (for tests and diagnostics). */
    public List<String> dataLinks() {
        return engine.linkKinds();
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
     * socket I/O can only address native memory and byte arrays.
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
        if (engine != null) {
            engine.close();
        }
        if (control != null) {
            control.close().awaitUninterruptibly(2, TimeUnit.SECONDS);
        }
        if (listener != null) {
            listener.close();
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
        peerGone(new PeerLostException(lostRank, address, reason));
    }

    @Override
    public void onCoordinatorLost(String reason) {
        if (!closed) {
            peerGone(new PeerLostException(0, config.masterHost() + ":" + config.masterPort(), reason
                    + " (rank 0 runs the coordinator)"));
        }
    }

    /** A rank is gone: tells the engine, or fails the connect in progress when the engine does not exist yet. */
    private void peerGone(CollectiveException cause) {
        RingEngine e;
        synchronized (this) {
            e = engine;
            if (e == null && pendingFailure == null) {
                pendingFailure = cause;
            }
        }
        if (e != null) {
            e.peerGone(cause);
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
        if (!buf.isAccessibleBy(ANOTHER_THREAD)) {
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
