package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.link.DataHeader;
import dev.anvil.collective.link.Inbound;
import dev.anvil.collective.link.Outbound;
import dev.anvil.collective.proto.Abort;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One ring of the engine: a link from the left neighbour served by a receiver thread, a link to the right neighbour
 * served by a sender thread, and the collectives' parts that run over them. The receiver reads each chunk into place
 * (or into the link's memory and reduces it from there) and queues the slice it unblocks; the sender writes queued
 * slices in order, straight from the caller's buffer. The queue holds (part, step, slice) triples in arrays that
 * grow but are never reallocated per frame.
 */
final class RingChannel {
    private final RingEngine engine;
    final int index;
    final Inbound in;
    final Outbound out;
    final Thread receiver;
    final Thread sender;

    private final ReentrantLock postLock = new ReentrantLock();
    private final Condition posted = postLock.newCondition();
    private final ArrayDeque<RingOp> active = new ArrayDeque<>();
    private long postedUpTo = -1;
    private RingOp current;

    /** Whoever writes to the outgoing link: the sender, or the receiver forwarding in place. */
    private final ReentrantLock producer = new ReentrantLock();
    private final ReentrantLock queueLock = new ReentrantLock();
    private RingOp[] queuedOps = new RingOp[64];
    private int[] queuedSteps = new int[64];
    private int[] queuedSlices = new int[64];
    private int queueHead;
    private int queueSize;
    private volatile boolean senderIdle;

    RingChannel(RingEngine engine, int index, Inbound in, Outbound out) {
        this.engine = engine;
        this.index = index;
        this.in = in;
        this.out = out;
        String prefix = "anvil-r" + engine.rank() + "-c" + index;
        this.receiver = Thread.ofPlatform().daemon().name(prefix + "-recv").unstarted(this::receiveLoop);
        this.sender = Thread.ofPlatform().daemon().name(prefix + "-send").unstarted(this::sendLoop);
    }

    void start() {
        receiver.start();
        sender.start();
    }

    /** Makes {@code op} receivable and queues its first slices; called in issue order. */
    void post(RingOp op) {
        postLock.lock();
        try {
            active.add(op);
            postedUpTo = op.seq;
            posted.signalAll();
        } finally {
            postLock.unlock();
        }
        op.start(this);
    }

    /** Queues slice {@code slice} of step {@code step} of {@code op} for the right neighbour. */
    void enqueue(RingOp op, int step, int slice) {
        queueLock.lock();
        try {
            if (queueSize == queuedOps.length) {
                grow();
            }
            int at = (queueHead + queueSize) % queuedOps.length;
            queuedOps[at] = op;
            queuedSteps[at] = step;
            queuedSlices[at] = slice;
            queueSize++;
        } finally {
            queueLock.unlock();
        }
        if (senderIdle) {
            out.wakeup();
        }
    }

    /**
     * For the receiver: a place in the outgoing link to write the next forwarded chunk into directly, when the link
     * has one free and the sender is not using the link; null otherwise (the chunk is then {@link #enqueue queued}).
     * Never waits, so the receiver never blocks on the right neighbour. A non-null claim holds the link until
     * {@link #publishClaimed} or {@link #dropClaim}.
     */
    MemorySegment claim() {
        if (!producer.tryLock()) {
            return null;
        }
        MemorySegment place = out.claim();
        if (place == null) {
            producer.unlock();
        }
        return place;
    }

    /** Sends the claimed chunk and releases the link. */
    void publishClaimed(DataHeader header) {
        try {
            out.publish(header);
        } finally {
            producer.unlock();
        }
    }

    /** Releases the link without sending the claimed chunk (the receive failed; the ring is breaking). */
    void dropClaim() {
        producer.unlock();
    }

    /** Wakes both threads so they notice that the ring is stopping. */
    void wakeup() {
        postLock.lock();
        try {
            posted.signalAll();
        } finally {
            postLock.unlock();
        }
        in.wakeup();
        out.wakeup();
    }

    private void grow() {
        int n = queuedOps.length;
        RingOp[] ops = new RingOp[2 * n];
        int[] steps = new int[2 * n];
        int[] slices = new int[2 * n];
        for (int i = 0; i < n; i++) {
            int from = (queueHead + i) % n;
            ops[i] = queuedOps[from];
            steps[i] = queuedSteps[from];
            slices[i] = queuedSlices[from];
        }
        queuedOps = ops;
        queuedSteps = steps;
        queuedSlices = slices;
        queueHead = 0;
    }

    private void receiveLoop() {
        DataHeader forwardHeader = new DataHeader();
        try {
            while (true) {
                DataHeader h = in.next();
                RingOp op = partFor(h.opSeq);
                if (op.receive(h, in, this, forwardHeader, engine.leftName())) {
                    retire(op);
                }
            }
        } catch (Throwable t) {
            engine.linkFailed(true, t);
        } finally {
            Abort abort = engine.abortToSend();
            if (abort != null) {
                in.abort(abort);
            }
            in.close();
        }
    }

    /** The posted part with sequence number {@code seq}, waiting (while keeping the link alive) until it is posted. */
    private RingOp partFor(long seq) throws IOException {
        if (current != null && current.seq == seq) {
            return current;
        }
        long heartbeat = engine.heartbeatNanos();
        while (true) {
            postLock.lock();
            try {
                for (RingOp op : active) {
                    if (op.seq == seq) {
                        current = op;
                        return op;
                    }
                }
                if (seq <= postedUpTo) {
                    throw new CollectiveException(engine.leftName()
                            + " sent a chunk for collective #" + seq + ", which this rank already completed");
                }
                if (!engine.stopping()) {
                    // Not issued here yet: stop reading, so the socket's flow control holds the neighbour back.
                    posted.awaitNanos(heartbeat);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted");
            } finally {
                postLock.unlock();
            }
            in.keepAlive();
        }
    }

    private void retire(RingOp op) {
        postLock.lock();
        try {
            active.remove(op);
        } finally {
            postLock.unlock();
        }
        current = null;
    }

    private void sendLoop() {
        DataHeader header = new DataHeader();
        long heartbeat = engine.heartbeatNanos();
        try {
            while (true) {
                RingOp op;
                int step;
                int slice;
                queueLock.lock();
                try {
                    if (queueSize == 0) {
                        op = null;
                        step = slice = 0;
                    } else {
                        op = queuedOps[queueHead];
                        step = queuedSteps[queueHead];
                        slice = queuedSlices[queueHead];
                        queuedOps[queueHead] = null;
                        queueHead = (queueHead + 1) % queuedOps.length;
                        queueSize--;
                    }
                } finally {
                    queueLock.unlock();
                }
                if (op == null) {
                    idle(heartbeat);
                    continue;
                }
                long offset = op.fill(header, step, slice);
                producer.lock();
                try {
                    out.send(header, op.sendView, offset);
                } finally {
                    producer.unlock();
                }
                op.sent();
            }
        } catch (Throwable t) {
            engine.linkFailed(false, t);
        } finally {
            Abort abort = engine.abortToSend();
            if (abort != null) {
                out.abort(abort);
            }
            out.close();
        }
    }

    /** Waits for work while serving the link; an enqueue after {@code senderIdle} is set wakes it. */
    private void idle(long nanos) throws IOException {
        senderIdle = true;
        try {
            queueLock.lock();
            boolean empty;
            try {
                empty = queueSize == 0;
            } finally {
                queueLock.unlock();
            }
            if (empty) {
                out.idle(nanos);
            }
        } finally {
            senderIdle = false;
        }
    }

    @Override
    public String toString() {
        return "channel " + index + ": receives from " + engine.leftName() + " over " + in.describe() + " on "
                + receiver.getName() + ", sends to " + engine.rightName() + " on " + sender.getName();
    }
}
