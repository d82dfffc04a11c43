package dev.anvil.collective.link;

import dev.anvil.collective.proto.Header;
import dev.anvil.collective.transport.Frames;
import java.io.Closeable;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;

/**
 * One end of a ring connection: a {@link Wire} and a selector to wait on its socket. Blocking reads and writes with a
 * deadline serve the handshake; the data links then wait through {@link #await(int, long)} with their own timeouts.
 * Owned by one thread at a time.
 */
public final class Endpoint implements Closeable {
    private final Wire wire;
    private final Selector selector;
    private final SelectionKey key;

    private Endpoint(Wire wire) throws IOException {
        this.wire = wire;
        this.selector = Selector.open();
        this.key = wire.socket().register(selector, 0);
    }

    /**
     * Takes over a connected socket, switching it to non-blocking mode, its send buffer sized for
     * {@link #SENT_SLICES} slices.
     *
     * @param tls the TLS engine to run over it (client or server mode set), or null for a plain connection
     * @param sliceBytes the ring's slice size
     * @param deadlineNanos when the TLS handshake must be done ({@link System#nanoTime()} scale)
     */
    public static Endpoint open(SocketChannel socket, SSLEngine tls, int sliceBytes, long deadlineNanos)
            throws IOException {
        socket.configureBlocking(false);
        socket.socket().setTcpNoDelay(true);
        socket.socket().setSendBufferSize(SENT_SLICES * sliceBytes);
        if (tls == null) {
            return new Endpoint(new PlainWire(socket));
        }
        TlsWire wire = new TlsWire(socket, tls);
        Endpoint endpoint = new Endpoint(wire);
        try {
            wire.handshake(endpoint, deadlineNanos);
        } catch (IOException | RuntimeException e) {
            endpoint.close();
            throw e;
        }
        return endpoint;
    }

    /**
     * Slices a data link's send buffer holds: the sender has at most this much written but not yet acknowledged, and
     * waits for the socket beyond it. (The receive buffer is left to the kernel's autotuning, so a receiver that is
     * off its core for a moment does not stall the sender, and a long link still gets a window for its
     * bandwidth-delay product.)
     */
    public static final int SENT_SLICES = 2;

    /** Whether the connection is encrypted. */
    boolean encrypted() {
        return wire instanceof TlsWire;
    }

    /** The wire, for the data links. */
    Wire wire() {
        return wire;
    }

    /** Remote address, for messages. */
    public String remote() {
        try {
            return String.valueOf(wire.socket().getRemoteAddress());
        } catch (IOException e) {
            return "a closed connection";
        }
    }

    /**
     * Waits until the socket is ready for {@code ops} or {@code timeoutNanos} pass.
     *
     * @return the ready operations (0 on timeout)
     */
    int await(int ops, long timeoutNanos) throws IOException {
        key.interestOps(ops);
        long millis = Math.max(1, TimeUnit.NANOSECONDS.toMillis(timeoutNanos));
        int ready = selector.select(millis) > 0 ? key.readyOps() : 0;
        selector.selectedKeys().clear();
        return ready;
    }

    /** Waits for {@code ops} until the deadline; throws when it passes first. */
    void awaitUntil(int ops, long deadlineNanos) throws IOException {
        long left = deadlineNanos - System.nanoTime();
        if (left <= 0 || await(ops, left) == 0 && System.nanoTime() - deadlineNanos >= 0) {
            throw new SocketTimeoutException("timed out");
        }
    }

    /** Wakes a thread waiting in {@link #await}; callable from any thread. */
    void wakeup() {
        selector.wakeup();
    }

    /** Fills {@code dst}, waiting until the deadline; end of stream is an error. */
    public void readFully(ByteBuffer dst, long deadlineNanos) throws IOException {
        while (dst.hasRemaining()) {
            int n = wire.read(dst);
            if (n < 0) {
                throw new LinkException(LinkException.Kind.CLOSED, "connection closed");
            }
            if (n == 0) {
                awaitUntil(SelectionKey.OP_READ, deadlineNanos);
            }
        }
    }

    /** Writes all of {@code srcs}, waiting until the deadline. */
    public void writeFully(long deadlineNanos, ByteBuffer... srcs) throws IOException {
        while (true) {
            wire.write(srcs);
            if (wire.flush() && !srcs[srcs.length - 1].hasRemaining()) {
                return;
            }
            awaitUntil(SelectionKey.OP_WRITE, deadlineNanos);
        }
    }

    /**
     * Reads one control frame, checking its length and type before reading or parsing its body.
     *
     * @throws Frames.BadFrameException naming what is wrong with it
     */
    public Header readFrame(int maxHeaderBytes, Set<Header.BodyCase> allowed, long deadlineNanos) throws IOException {
        ByteBuffer prefix = ByteBuffer.allocate(4);
        readFully(prefix, deadlineNanos);
        int length = Frames.checkLength(prefix.flip().getInt(), maxHeaderBytes);
        ByteBuffer body = ByteBuffer.allocate(length);
        readFully(body, deadlineNanos);
        return Frames.parse(body.flip(), allowed);
    }

    /** Writes one control frame. */
    public void writeFrame(Header header, long deadlineNanos) throws IOException {
        writeFully(deadlineNanos, Frames.encode(header));
    }

    /**
     * Closes after the peer read what was written: sends end-of-stream, then reads and discards what the peer still
     * sends (at most {@code millis}), so that closing with unread bytes does not reset the connection and destroy
     * the last frame (a refusal) before the peer reads it.
     */
    public void closeAfterLastWrite(long millis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        try {
            if (wire.flush()) {
                wire.socket().shutdownOutput();
                ByteBuffer sink = ByteBuffer.allocate(4096);
                while (System.nanoTime() - deadline < 0 && wire.socket().read(sink.clear()) >= 0) {
                    await(SelectionKey.OP_READ, deadline - System.nanoTime());
                }
            }
        } catch (IOException ignored) {
            // the peer went first
        }
        close();
    }

    @Override
    public void close() {
        try {
            selector.close();
        } catch (IOException ignored) {
            // closing the socket is what matters
        }
        try {
            wire.close();
        } catch (IOException ignored) {
            // already closed
        }
    }
}
