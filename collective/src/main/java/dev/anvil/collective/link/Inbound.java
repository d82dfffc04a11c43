package dev.anvil.collective.link;

import dev.anvil.collective.proto.Abort;
import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * The receiving end of one channel's data link: chunks from the left neighbour, in the order it sent them. Used by
 * one thread; heartbeats and the neighbour's aborts are handled inside.
 */
public interface Inbound extends Closeable {
    /**
     * Waits for the next chunk. Its payload must then be taken with {@link #payloadInto} or {@link #payload} before
     * the next call.
     *
     * @return the chunk's header, reused by the next call
     * @throws LinkException when the neighbour closed, fell silent or aborted, or the ring is stopping
     * @throws ProtocolException when the neighbour sent something the protocol does not allow
     */
    DataHeader next() throws IOException;

    /** Moves the current chunk's payload into {@code dst} at {@code offset}, straight from the link. */
    void payloadInto(BufferView dst, long offset) throws IOException;

    /**
     * The current chunk's payload in the link's own memory (a pooled slot, or the shared-memory FIFO itself), its
     * first {@code payloadLength} bytes; valid until {@link #next}.
     */
    MemorySegment payload() throws IOException;

    /** Serves the link (heartbeats) while its thread waits before taking a payload. Does not block. */
    void keepAlive() throws IOException;

    /** Wakes the link's thread from a wait; callable from any thread. */
    void wakeup();

    /** Tells the neighbour, best effort, that the ring broke and whom to blame. */
    void abort(Abort abort);

    /** "tcp", "tls" or "shm", for the log. */
    String describe();

    @Override
    void close();
}
