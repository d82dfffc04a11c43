package dev.anvil.collective.link;

import dev.anvil.collective.proto.Abort;
import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * The sending end of one channel's data link: chunks to the right neighbour. Used by one thread; heartbeats and the
 * neighbour's aborts are handled inside.
 */
public interface Outbound extends Closeable {
    /**
     * Sends one chunk: {@code header} and {@code header.payloadLength} bytes of {@code src} from {@code offset}.
     * Returns once the link took them (into the socket, or the shared-memory FIFO), waiting while it is full: the
     * socket's or the FIFO's capacity bounds what is in flight.
     *
     * @throws LinkException when the neighbour closed, fell silent or aborted, or the ring is stopping
     */
    void send(DataHeader header, BufferView src, long offset) throws IOException;

    /**
     * Where the next chunk's payload may be written in place (a free shared-memory slot), so a receiver can reduce
     * straight into what goes to the right neighbour; null when the link has no such place or none is free now.
     * Never waits. A non-null answer must be followed by {@link #publish}, on the same thread, before any other send.
     */
    default MemorySegment claim() {
        return null;
    }

    /** Sends the chunk whose payload was written into the {@link #claim claimed} place. */
    default void publish(DataHeader header) {
        throw new UnsupportedOperationException("nothing was claimed");
    }

    /** Waits up to {@code nanos} while serving the link (heartbeats, the neighbour's aborts); {@link #wakeup} ends it. */
    void idle(long nanos) throws IOException;

    /** Wakes the link's thread from a wait; callable from any thread. */
    void wakeup();

    /** Tells the neighbour, best effort, that the ring broke and whom to blame. */
    void abort(Abort abort);

    @Override
    void close();
}
