package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.PeerLostException;
import dev.anvil.collective.ReduceOp;
import dev.anvil.collective.link.Connection;
import dev.anvil.collective.link.LinkControl;
import dev.anvil.collective.link.LinkException;
import dev.anvil.collective.link.ProtocolException;
import dev.anvil.collective.proto.Abort;
import dev.anvil.collective.proto.OpKind;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * Runs collectives over established data links: {@code channels} rings side by side, each over disjoint parts of
 * every buffer, each with its own links and its own receiver and sender threads ({@link RingChannel}), so that
 * reading, reducing and sending proceed in parallel without locks on the data path.
 *
 * <p>Collectives are numbered in issue order and complete in that order. A chunk for a collective this rank has not
 * issued yet makes its receiver stop reading until it is issued: the socket's flow control then holds the sender
 * back, so a fast neighbour cannot make this process buffer anything.
 *
 * <p>The first failure wins and breaks the engine: it fails every pending collective, tells the neighbours (over the
 * data links) and the coordinator which rank was lost, and closes the links. A watchdog fails the oldest collective
 * when it makes no progress for the peer timeout, so no collective waits forever.
 */
public final class RingEngine implements LinkControl {
    private static final System.Logger LOG = System.getLogger(RingEngine.class.getName());

    private final int rank;
    private final int ranks;
    private final int sliceBytes;
    private final Duration timeout;
    private final IntFunction<String> addressOf;
    private final Consumer<Abort> reportToCoordinator;
    private final RingChannel[] channels;
    private final ArrayDeque<Collective> ops = new ArrayDeque<>();
    private final AtomicInteger drainers = new AtomicInteger();
    private final Thread watchdog;
    private long nextSeq;
    private volatile CollectiveException failure;
    private volatile Abort abortToSend;
    private volatile boolean closing;
    private CollectiveException departure;

    /**
     * @param links per channel, the connection from the left and the one to the right, handshakes done
     * @param addressOf rank to "host:port", for error messages
     * @param reportToCoordinator sends an Abort to the coordinator so ranks outside the broken link hear of it
     */
    public RingEngine(int rank, int ranks, int sliceBytes, Duration timeout, List<Links> links,
            IntFunction<String> addressOf, Consumer<Abort> reportToCoordinator) {
        this.rank = rank;
        this.ranks = ranks;
        this.sliceBytes = sliceBytes;
        this.timeout = timeout;
        this.addressOf = addressOf;
        this.reportToCoordinator = reportToCoordinator;
        this.channels = new RingChannel[links.size()];
        for (int c = 0; c < channels.length; c++) {
            channels[c] = new RingChannel(this, c, links.get(c).fromLeft().inbound(this, timeout, sliceBytes),
                    links.get(c).toRight().outbound(this, timeout));
        }
        this.watchdog = Thread.ofPlatform().daemon().name("anvil-r" + rank + "-watchdog").unstarted(this::watch);
    }

    /** One channel's connections. */
    public record Links(Connection fromLeft, Connection toRight) {
    }

    /** Starts the channels' threads and the watchdog. */
    public void start() {
        for (RingChannel c : channels) {
            c.start();
        }
        watchdog.start();
    }

    /** How each channel's data arrives: "tcp", "tls" or "shm". */
    public List<String> linkKinds() {
        List<String> kinds = new ArrayList<>();
        for (RingChannel c : channels) {
            kinds.add(c.in.describe());
        }
        return kinds;
    }

    /** Which thread serves which link, one line per channel, for the log. */
    public String threadMap() {
        StringBuilder map = new StringBuilder();
        for (RingChannel c : channels) {
            map.append("\n  ").append(c);
        }
        return map.toString();
    }

    /** Issues an all-reduce; see {@code Communicator#allReduceAsync}. */
    public CompletableFuture<Void> allReduce(MemorySegment buf, ElementType type, ReduceOp op) {
        return submit(OpKind.ALL_REDUCE, buf, type, op, -1);
    }

    /** Issues a reduce-scatter; see {@code Communicator#reduceScatterAsync}. */
    public CompletableFuture<Void> reduceScatter(MemorySegment buf, ElementType type, ReduceOp op) {
        return submit(OpKind.REDUCE_SCATTER, buf, type, op, -1);
    }

    /** Issues an all-gather; see {@code Communicator#allGatherAsync}. */
    public CompletableFuture<Void> allGather(MemorySegment buf, ElementType type) {
        return submit(OpKind.ALL_GATHER, buf, type, ReduceOp.SUM, -1);
    }

    /** Issues a broadcast; see {@code Communicator#broadcastAsync}. */
    public CompletableFuture<Void> broadcast(MemorySegment buf, int root) {
        return submit(OpKind.BROADCAST, buf, ElementType.FLOAT32, ReduceOp.SUM, root);
    }

    private synchronized CompletableFuture<Void> submit(OpKind kind, MemorySegment buf, ElementType type,
            ReduceOp reduce, int root) {
        Collective c = new Collective(nextSeq++, channels.length, this::drain);
        CollectiveException f = failure;
        if (f != null) {
            c.future.completeExceptionally(f);
            return c.future;
        }
        c.parts = new RingOp[channels.length];
        for (int i = 0; i < channels.length; i++) {
            c.parts[i] = new RingOp(c, kind, buf, type, reduce, root, rank, ranks, i, channels.length, sliceBytes);
        }
        ops.add(c);
        for (int i = 0; i < channels.length; i++) {
            channels[i].post(c.parts[i]);
        }
        return c.future;
    }

    /** Completes finished collectives strictly in issue order, even when a later one finishes first. */
    private void drain() {
        if (drainers.getAndIncrement() != 0) {
            return;
        }
        int missed = 1;
        do {
            while (true) {
                Collective done;
                CollectiveException gone = null;
                synchronized (this) {
                    done = ops.peek();
                    if (done != null && done.isDone()) {
                        ops.poll();
                    } else {
                        done = null;
                        if (ops.isEmpty()) {
                            gone = departure;
                        }
                    }
                }
                if (done == null) {
                    if (gone != null) {
                        fail(gone);
                    }
                    break;
                }
                done.future.complete(null);
            }
            missed = drainers.addAndGet(-missed);
        } while (missed != 0);
    }

    /** Breaks the ring because of {@code cause}; idempotent, callable from any thread. */
    public void fail(CollectiveException cause) {
        List<Collective> pending;
        Abort abort = null;
        synchronized (this) {
            if (failure != null) {
                return;
            }
            if (!closing) {
                abort = Abort.newBuilder()
                        .setLostRank(cause instanceof PeerLostException p ? p.lostRank() : rank)
                        .setReason(cause instanceof PeerLostException p ? p.reason() : cause.getMessage())
                        .build();
                // Before failure: a link thread that sees stopping() must find the abort to pass on, or its
                // neighbour sees a bare close and blames this rank instead of the one lost.
                abortToSend = abort;
            }
            failure = cause;
            pending = new ArrayList<>(ops);
            ops.clear();
        }
        if (abort != null) {
            LOG.log(System.Logger.Level.WARNING, "rank {0}: ring broken: {1}", rank, cause.getMessage());
            reportToCoordinator.accept(abort);
        }
        for (RingChannel c : channels) {
            c.wakeup();
        }
        LockSupport.unpark(watchdog);
        for (Collective c : pending) {
            c.future.completeExceptionally(cause);
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
     * only after its last collective completed, so whatever they still need from it has already arrived. They
     * complete first, then the ring closes; the watchdog still bounds the wait.
     */
    public void peerGone(CollectiveException cause) {
        synchronized (this) {
            if (closing && !ops.isEmpty() && failure == null) {
                if (departure == null) {
                    departure = cause;
                }
                return;
            }
        }
        fail(cause);
    }

    /** Closes the ring; pending collectives fail and neighbours see this rank as lost. Waits for the threads. */
    public void close() {
        closing = true;
        fail(new CollectiveException("the communicator of rank " + rank + " was closed"));
        for (RingChannel c : channels) {
            join(c.receiver);
            join(c.sender);
        }
        join(watchdog);
    }

    private static void join(Thread t) {
        if (t.getState() == Thread.State.NEW || t == Thread.currentThread()) {
            return;
        }
        try {
            t.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The failure that broke the ring, or null. */
    public CollectiveException failure() {
        return failure;
    }

    @Override
    public boolean stopping() {
        return failure != null;
    }

    /** What the links tell their neighbours when they stop: null when closing normally. */
    Abort abortToSend() {
        return abortToSend;
    }

    /** How often an idle link proves itself alive. */
    long heartbeatNanos() {
        return Math.max(TimeUnit.MILLISECONDS.toNanos(50), timeout.toNanos() / 4);
    }

    int rank() {
        return rank;
    }

    /** A channel's link stopped with {@code t}: turn it into the failure that names the rank to blame. */
    void linkFailed(boolean fromLeft, Throwable t) {
        int neighbour = fromLeft ? leftRank() : rightRank();
        switch (t) {
            case LinkException e when e.kind() == LinkException.Kind.STOPPED -> { }
            case LinkException e when e.kind() == LinkException.Kind.ABORTED ->
                    fail(new PeerLostException(e.lostRank(), address(e.lostRank()), e.getMessage()));
            // The neighbour went away (closed, or reset the connection): expected while the job shuts down.
            case LinkException e when e.kind() == LinkException.Kind.CLOSED ->
                    peerGone(new PeerLostException(neighbour, address(neighbour), e.getMessage()));
            case LinkException e -> fail(new PeerLostException(neighbour, address(neighbour), e.getMessage()));
            case ProtocolException e -> fail(new PeerLostException(neighbour, address(neighbour), e.getMessage()));
            case CollectiveException e -> fail(new PeerLostException(neighbour, address(neighbour), e.getMessage()));
            case IOException e -> peerGone(new PeerLostException(neighbour, address(neighbour), e.toString()));
            default -> fail(new CollectiveException("rank " + rank + ": the ring thread failed: " + t, t));
        }
    }

    private void watch() {
        long period = Math.max(TimeUnit.MILLISECONDS.toNanos(10), timeout.toNanos() / 8);
        while (failure == null) {
            LockSupport.parkNanos(period);
            Collective oldest;
            synchronized (this) {
                oldest = ops.peek();
            }
            if (oldest == null || failure != null) {
                continue;
            }
            long idle = System.nanoTime() - oldest.lastProgressNanos();
            if (idle > timeout.toNanos()) {
                fail(new PeerLostException(leftRank(), address(leftRank()), oldest.describe()
                        + " made no progress for " + TimeUnit.NANOSECONDS.toMillis(idle) + " ms waiting for rank "
                        + leftRank() + " (left neighbour); a rank hung, died, or did not issue the same collective"));
            }
        }
    }

    private String address(int r) {
        return r >= 0 && r < ranks ? addressOf.apply(r) : "unknown";
    }

    private int leftRank() {
        return Math.floorMod(rank - 1, ranks);
    }

    private int rightRank() {
        return Math.floorMod(rank + 1, ranks);
    }

    /** "rank N (host:port)" of the left neighbour. */
    String leftName() {
        return "rank " + leftRank() + " (" + address(leftRank()) + ")";
    }

    /** "rank N (host:port)" of the right neighbour. */
    String rightName() {
        return "rank " + rightRank() + " (" + address(rightRank()) + ")";
    }
}
