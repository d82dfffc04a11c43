package dev.anvil.collective.link;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * A TLS wire: an {@link SSLEngine} over a non-blocking socket. Records are decrypted straight into the caller's buffer
 * when it has room for a whole record (payloads land in place as on a plain wire), through a small buffer otherwise.
 */
final class TlsWire implements Wire {
    private static final ByteBuffer[] NOTHING = {ByteBuffer.allocate(0)};

    private final SocketChannel socket;
    private final SSLEngine engine;
    private final ByteBuffer netIn;   // filling: ciphertext in [0, position)
    private final ByteBuffer netOut;  // draining: ciphertext in [position, limit)
    private final ByteBuffer appIn;   // draining: plaintext in [position, limit)

    TlsWire(SocketChannel socket, SSLEngine engine) {
        this.socket = socket;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocateDirect(packet);
        this.netOut = ByteBuffer.allocateDirect(packet).limit(0);
        this.appIn = ByteBuffer.allocateDirect(engine.getSession().getApplicationBufferSize()).limit(0);
    }

    /**
     * Runs the TLS handshake.
     *
     * @param endpoint waits for the socket's readiness until the deadline
     * @throws SSLException when the peer's certificate (or this one, at the peer) is refused
     */
    void handshake(Endpoint endpoint, long deadlineNanos) throws IOException {
        engine.beginHandshake();
        SSLEngineResult.HandshakeStatus status = engine.getHandshakeStatus();
        try {
            while (status != SSLEngineResult.HandshakeStatus.FINISHED
                    && status != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING) {
                switch (status) {
                    case NEED_WRAP -> {
                        status = wrap(NOTHING).getHandshakeStatus();
                        while (!flush()) {
                            endpoint.awaitUntil(SelectionKey.OP_WRITE, deadlineNanos);
                        }
                    }
                    case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                        checkRecord();
                        SSLEngineResult r = unwrap(appInForWriting());
                        appIn.flip();
                        if (r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW) {
                            endpoint.awaitUntil(SelectionKey.OP_READ, deadlineNanos);
                            if (socket.read(netIn) < 0) {
                                throw new SSLException("the peer closed the connection during the TLS handshake");
                            }
                        } else if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                            throw new SSLException("the peer ended the TLS handshake");
                        }
                        status = r.getHandshakeStatus();
                    }
                    case NEED_TASK -> status = runTasks();
                    default -> throw new SSLException("unexpected TLS handshake state " + status);
                }
            }
        } catch (PlaintextPeer e) {
            throw e; // a peer that does not speak TLS gets no answer at all, not even an alert
        } catch (SSLException e) {
            sendAlert();
            throw e;
        }
        while (!flush()) {
            endpoint.awaitUntil(SelectionKey.OP_WRITE, deadlineNanos);
        }
    }

    /** The peer's first bytes are not a TLS record: it speaks plaintext. */
    private static final class PlaintextPeer extends SSLException {
        PlaintextPeer() {
            super("the peer does not speak TLS (its first bytes are not a TLS record); is it configured for TLS?");
        }
    }

    /** Refuses a first record that is not TLS (content type 20..24, version 3.x) before the engine sees it. */
    private void checkRecord() throws PlaintextPeer {
        if (netIn.position() >= 1 && ((netIn.get(0) & 0xFF) < 20 || (netIn.get(0) & 0xFF) > 24)
                || netIn.position() >= 2 && netIn.get(1) != 3) {
            throw new PlaintextPeer();
        }
    }

    @Override
    public SocketChannel socket() {
        return socket;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (appIn.hasRemaining()) {
            return transfer(dst);
        }
        int appSize = engine.getSession().getApplicationBufferSize();
        while (true) {
            boolean direct = dst.remaining() >= appSize;
            SSLEngineResult r = unwrap(direct ? dst : appInForWriting());
            if (!direct) {
                appIn.flip();
            }
            if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                runTasks();
            }
            if (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                wrap(NOTHING); // a post-handshake message (key update) to answer
                flush();
            }
            switch (r.getStatus()) {
                case OK -> {
                    if (r.bytesProduced() > 0) {
                        return direct ? r.bytesProduced() : transfer(dst);
                    }
                }
                case BUFFER_UNDERFLOW -> {
                    int n = socket.read(netIn);
                    if (n <= 0) {
                        return n;
                    }
                }
                case CLOSED -> {
                    return -1;
                }
                case BUFFER_OVERFLOW -> throw new SSLException("TLS record larger than the session allows");
            }
        }
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        long consumed = 0;
        while (flush() && remaining(srcs) > 0) {
            SSLEngineResult r = wrap(srcs);
            if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                throw new SSLException("the TLS session is closed");
            }
            consumed += r.bytesConsumed();
        }
        return consumed;
    }

    @Override
    public boolean flush() throws IOException {
        while (netOut.hasRemaining()) {
            if (socket.write(netOut) == 0) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }

    private SSLEngineResult wrap(ByteBuffer[] srcs) throws SSLException {
        netOut.clear();
        try {
            return engine.wrap(srcs, netOut);
        } finally {
            netOut.flip();
        }
    }

    private SSLEngineResult unwrap(ByteBuffer dst) throws SSLException {
        netIn.flip();
        try {
            return engine.unwrap(netIn, dst);
        } finally {
            netIn.compact();
        }
    }

    private ByteBuffer appInForWriting() {
        return appIn.compact();
    }

    private int transfer(ByteBuffer dst) {
        int n = Math.min(dst.remaining(), appIn.remaining());
        int limit = appIn.limit();
        appIn.limit(appIn.position() + n);
        dst.put(appIn);
        appIn.limit(limit);
        return n;
    }

    private SSLEngineResult.HandshakeStatus runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
        return engine.getHandshakeStatus();
    }

    /** Best effort: tell the peer why the handshake failed (its certificate was refused, say). */
    private void sendAlert() {
        try {
            engine.closeOutbound();
            if (!netOut.hasRemaining()) {
                wrap(NOTHING);
            }
            flush();
        } catch (IOException ignored) {
            // the handshake failure is what matters
        }
    }

    private static long remaining(ByteBuffer[] buffers) {
        long n = 0;
        for (ByteBuffer b : buffers) {
            n += b.remaining();
        }
        return n;
    }
}
