package dev.anvil.collective.link;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;

/**
 * Receiving end of a shared-memory data link: chunks are taken from the FIFO's slots where the left neighbour wrote
 * them (reduced straight out of the slot, or copied into place), and the slot is handed back when the next chunk is
 * asked for. The socket of the link carries only heartbeats and aborts, and tells when the neighbour dies.
 */
final class ShmInbound extends SocketLink implements Inbound {
    private final ShmFifo fifo;
    private final DataHeader header = new DataHeader();
    private boolean holding;

    ShmInbound(Endpoint endpoint, ShmFifo fifo, LinkControl control, Duration peerTimeout) {
        super(endpoint, new LinkEnd(endpoint, control, peerTimeout, true, true));
        this.fifo = fifo;
    }

    @Override
    public DataHeader next() throws IOException {
        if (holding) {
            fifo.free();
            holding = false;
        }
        while (!fifo.hasPublished()) {
            end.keepAlive(true);
            fifo.await();
        }
        end.heard();
        header.decode(fifo.frontHeader(), fifo.slotBytes());
        if (header.type != DataHeader.CHUNK) {
            throw new ProtocolException("bad frame: frame type " + header.type + " in the shared-memory FIFO");
        }
        holding = true;
        return header;
    }

    @Override
    public void payloadInto(BufferView dst, long offset) {
        MemorySegment.copy(fifo.frontPayload(), 0, dst.segment(), offset, header.payloadLength);
    }

    @Override
    public MemorySegment payload() {
        return fifo.frontPayload();
    }

    @Override
    public void keepAlive() throws IOException {
        end.keepAlive(true);
    }

    @Override
    public void wakeup() {
        super.wakeup();
        fifo.wakeup();
    }

    @Override
    public String describe() {
        return "shm";
    }

    @Override
    public void close() {
        super.close();
        fifo.close();
    }
}
