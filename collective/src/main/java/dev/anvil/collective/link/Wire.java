package dev.anvil.collective.link;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * A connected byte stream over a non-blocking socket, plain or TLS. Reads and writes never block; an {@link Endpoint}
 * waits for readiness. A wire is used by one thread at a time.
 */
public interface Wire extends Closeable {
    /** The socket underneath, for readiness selection. */
    SocketChannel socket();

    /**
     * Reads what is available into {@code dst}, straight from the socket when the wire is plain.
     *
     * @return bytes read, 0 when none are available, -1 at the end of the stream
     */
    int read(ByteBuffer dst) throws IOException;

    /**
     * Writes what the socket takes from {@code srcs}, in order.
     *
     * @return plaintext bytes consumed from {@code srcs}
     */
    long write(ByteBuffer[] srcs) throws IOException;

    /**
     * Pushes bytes the wire has taken but not yet handed to the socket (TLS records).
     *
     * @return true when nothing is left to push
     */
    boolean flush() throws IOException;
}
