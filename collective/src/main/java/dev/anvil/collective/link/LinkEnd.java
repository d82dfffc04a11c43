package dev.anvil.collective.link;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.anvil.collective.proto.Abort;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The socket of one end of a data link once its handshake is done, with the duties every link has besides moving
 * data: heartbeats when this end has written nothing for a quarter of the peer timeout, control frames (heartbeats,
 * aborts) from the peer, failing when the peer is silent for the whole timeout, and leaving any wait when the ring
 * stops. Owned by the link's one thread.
 */
final class LinkEnd {
    private static final String CLOSED = "connection closed (process died or closed its communicator)";

    private final Endpoint endpoint;
    private final Wire wire;
    private final LinkControl control;
    private final boolean controlIn;
    private final boolean controlOnlyOut;
    private final long timeoutNanos;
    private final long heartbeatNanos;
    private final ByteBuffer ctlIn = ByteBuffer.allocateDirect(DataHeader.BYTES + DataHeader.MAX_ABORT_BYTES);
    private final DataHeader ctlHeader = new DataHeader();
    private boolean ctlHeaderRead;
    private final ByteBuffer ctlOut = ByteBuffer.allocateDirect(DataHeader.BYTES + DataHeader.MAX_ABORT_BYTES)
            .limit(0);
    private final ByteBuffer[] ctlOutArray = {ctlOut};
    private final DataHeader outHeader = new DataHeader();
    private long lastHeard;
    private long lastSent;

    /**
     * @param controlIn whether what arrives on this socket is only control frames (read here as they come); when
     *     false the link reads the incoming stream itself
     * @param controlOnlyOut whether this end writes only control frames, so a heartbeat may go at any time; when false
     *     the link writes data frames and heartbeats go only through {@link #keepAlive} between frames
     */
    LinkEnd(Endpoint endpoint, LinkControl control, Duration peerTimeout, boolean controlIn, boolean controlOnlyOut) {
        this.endpoint = endpoint;
        this.wire = endpoint.wire();
        this.control = control;
        this.controlIn = controlIn;
        this.controlOnlyOut = controlOnlyOut;
        this.timeoutNanos = peerTimeout.toNanos();
        this.heartbeatNanos = Math.max(TimeUnit.MILLISECONDS.toNanos(50), timeoutNanos / 4);
        this.lastHeard = System.nanoTime();
        this.lastSent = lastHeard;
    }

    /** Records that the peer showed signs of life other than socket bytes (shared-memory progress). */
    void heard() {
        lastHeard = System.nanoTime();
    }

    /**
     * Fills {@code dst} from the incoming stream, waiting as needed.
     *
     * @param frameBegun whether bytes of the frame were read before ({@code dst} continues a frame), so the end of
     *     the stream cuts the frame short
     */
    void read(ByteBuffer dst, boolean frameBegun) throws IOException {
        int start = dst.position();
        while (dst.hasRemaining()) {
            int n = wire.read(dst);
            if (n > 0) {
                lastHeard = System.nanoTime();
            } else if (n < 0) {
                if (frameBegun || dst.position() > start) {
                    // Never a clean departure: a rank that leaves has sent whole frames.
                    throw new ProtocolException("connection closed in the middle of a frame (the process died, or"
                            + " sent a truncated frame)");
                }
                throw new LinkException(LinkException.Kind.CLOSED, CLOSED);
            } else {
                waitFor(SelectionKey.OP_READ, true);
            }
        }
    }

    /** Writes all of {@code srcs} to the outgoing stream, after any control frame begun, waiting as needed. */
    void write(ByteBuffer[] srcs) throws IOException {
        while (!flushControl()) {
            waitFor(SelectionKey.OP_WRITE, true);
        }
        ByteBuffer last = srcs[srcs.length - 1];
        while (true) {
            if (wire.write(srcs) > 0) {
                lastHeard = System.nanoTime(); // the peer reads: alive, though too busy to send heartbeats
            }
            if (wire.flush() && !last.hasRemaining()) {
                lastSent = System.nanoTime();
                return;
            }
            waitFor(SelectionKey.OP_WRITE, true);
        }
    }

    /**
     * Serves the link while its thread has nothing to move: reads control frames, sends a heartbeat when one is due,
     * and checks that the peer is alive. Does not block.
     *
     * @param expectHearing whether the peer should be heard from (false while this end deliberately stops reading)
     */
    void keepAlive(boolean expectHearing) throws IOException {
        checkStop();
        if (controlIn) {
            readControl();
        }
        if (System.nanoTime() - lastSent >= heartbeatNanos && !ctlOut.hasRemaining()) {
            queueControl(DataHeader.HEARTBEAT, null);
        }
        flushControl();
        if (expectHearing) {
            checkSilence();
        }
    }

    /** Waits at most {@code nanos} for something to do, serving control duties; used by idle loops. */
    void idle(long nanos, boolean expectHearing) throws IOException {
        keepAlive(expectHearing);
        int ready = endpoint.await(interest(0), Math.min(nanos, nextDuty()));
        if (ready != 0) {
            keepAlive(expectHearing);
        }
    }

    /** Wakes the thread in a wait; callable from any thread. */
    void wakeup() {
        endpoint.wakeup();
    }

    /**
     * Tells the peer, best effort and within a second, that the ring broke, blaming {@code abort.lostRank}. Only
     * between data frames.
     */
    void abort(Abort abort) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
        try {
            while (!flushControl()) {
                if (System.nanoTime() - deadline > 0) {
                    return;
                }
                endpoint.await(SelectionKey.OP_WRITE, deadline - System.nanoTime());
            }
            queueControl(DataHeader.ABORT, abort);
            endpoint.writeFully(deadline, ctlOut);
        } catch (IOException ignored) {
            // the peer will see the connection close instead
        }
    }

    /** The abort a peer sent, as the exception that stops this link. */
    static LinkException aborted(ByteBuffer body) throws ProtocolException {
        try {
            Abort abort = Abort.parseFrom(body);
            return new LinkException(LinkException.Kind.ABORTED, abort.getLostRank(), abort.getReason());
        } catch (InvalidProtocolBufferException e) {
            throw new ProtocolException("bad frame: unparseable abort: " + e.getMessage());
        }
    }

    private void waitFor(int ops, boolean expectHearing) throws IOException {
        checkStop();
        if (expectHearing) {
            checkSilence();
        }
        int ready = endpoint.await(interest(ops), nextDuty());
        if (controlIn && (ready & SelectionKey.OP_READ) != 0) {
            readControl();
        }
        if (controlOnlyOut && System.nanoTime() - lastSent >= heartbeatNanos && !ctlOut.hasRemaining()) {
            queueControl(DataHeader.HEARTBEAT, null);
        }
        flushControl();
    }

    private int interest(int ops) {
        return ops | (controlIn ? SelectionKey.OP_READ : 0) | (ctlOut.hasRemaining() ? SelectionKey.OP_WRITE : 0);
    }

    /** Nanoseconds until a heartbeat or the silence check is due (at least 1 ms). */
    private long nextDuty() {
        long now = System.nanoTime();
        long heartbeat = lastSent + heartbeatNanos - now;
        long silence = lastHeard + timeoutNanos - now;
        return Math.max(TimeUnit.MILLISECONDS.toNanos(1), Math.min(heartbeat, silence));
    }

    private void checkStop() throws LinkException {
        if (control.stopping()) {
            throw new LinkException(LinkException.Kind.STOPPED, "the ring is stopping");
        }
    }

    private void checkSilence() throws LinkException {
        long silent = System.nanoTime() - lastHeard;
        if (silent > timeoutNanos) {
            throw new LinkException(LinkException.Kind.SILENT, "sent nothing, not even a heartbeat, for "
                    + TimeUnit.NANOSECONDS.toMillis(silent) + " ms (hung or frozen?)");
        }
    }

    /** Reads whatever control frames have arrived, without blocking. */
    private void readControl() throws IOException {
        while (true) {
            int need = ctlHeaderRead ? DataHeader.BYTES + ctlHeader.payloadLength : DataHeader.BYTES;
            ctlIn.limit(need);
            int n = wire.read(ctlIn);
            if (n < 0) {
                throw new LinkException(LinkException.Kind.CLOSED, CLOSED);
            }
            if (n > 0) {
                lastHeard = System.nanoTime();
            }
            if (ctlIn.hasRemaining()) {
                return;
            }
            if (!ctlHeaderRead) {
                ctlHeader.decode(ctlIn.flip(), Integer.MAX_VALUE);
                if (ctlHeader.type == DataHeader.CHUNK) {
                    throw new ProtocolException("bad frame: a data chunk on a connection that carries only control"
                            + " frames");
                }
                ctlIn.limit(DataHeader.BYTES + ctlHeader.payloadLength).position(DataHeader.BYTES);
                ctlHeaderRead = true;
                if (ctlHeader.payloadLength > 0) {
                    continue;
                }
            }
            ctlHeaderRead = false;
            ctlIn.clear();
            if (ctlHeader.type == DataHeader.ABORT) {
                throw aborted(ctlIn.slice(DataHeader.BYTES, ctlHeader.payloadLength));
            }
        }
    }

    private void queueControl(int type, Abort abort) {
        ctlOut.clear();
        byte[] body = abort == null ? new byte[0] : abort.toByteArray();
        outHeader.control(type, body.length).encode(ctlOut);
        ctlOut.put(body).flip();
    }

    /** Writes a begun control frame; true when none is left. */
    private boolean flushControl() throws IOException {
        if (ctlOut.hasRemaining() && wire.write(ctlOutArray) > 0) {
            lastSent = System.nanoTime();
        }
        return wire.flush() && !ctlOut.hasRemaining();
    }
}
