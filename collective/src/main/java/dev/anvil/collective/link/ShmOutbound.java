package dev.anvil.collective.link;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;

/**
 * Sending end of a shared-memory data link: a chunk is copied from the caller's buffer into the next free slot of
 * the right neighbour's FIFO, or written there in place by whoever {@link #claim claims} the slot, and published. The FIFO's slots bound what is in flight; a send waits while all are
 * taken. The socket of the link carries only heartbeats and aborts, and tells when the neighbour dies.
 */
final class ShmOutbound extends SocketLink implements Outbound {
    private final ShmFifo fifo;

    ShmOutbound(Endpoint endpoint, ShmFifo fifo, LinkControl control, Duration peerTimeout) {
        super(endpoint, new LinkEnd(endpoint, control, peerTimeout, true, true));
        this.fifo = fifo;
    }

    @Override
    public void send(DataHeader header, BufferView src, long offset) throws IOException {
        while (!fifo.hasFree()) {
            end.keepAlive(true);
            fifo.await();
        }
        if (fifo.peerProgressed()) {
            end.heard(); // the neighbour consumes: alive, though too busy to send heartbeats
        }
        MemorySegment.copy(src.segment(), offset, fifo.nextPayload(), 0, header.payloadLength);
        publish(header);
    }

    @Override
    public MemorySegment claim() {
        return fifo.hasFree() ? fifo.nextPayload() : null;
    }

    @Override
    public void publish(DataHeader header) {
        header.encode(fifo.nextHeader());
        fifo.publish();
    }

    @Override
    public void idle(long nanos) throws IOException {
        end.idle(nanos, true);
    }

    @Override
    public void wakeup() {
        super.wakeup();
        fifo.wakeup();
    }

    @Override
    public void close() {
        super.close();
        fifo.close();
    }
}
