package dev.anvil.collective.link;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * Receiving end of a TCP data link. Headers are read into a reused buffer; a payload goes from the socket straight
 * into its destination, or into this link's one pooled native slot when it is to be reduced rather than stored. The
 * reverse direction carries only heartbeats and aborts.
 */
final class TcpInbound extends SocketLink implements Inbound {
    private final int maxPayload;
    private final ByteBuffer headerBytes = ByteBuffer.allocateDirect(DataHeader.BYTES);
    private final ByteBuffer abortBytes = ByteBuffer.allocateDirect(DataHeader.MAX_ABORT_BYTES);
    private final DataHeader header = new DataHeader();
    private final Arena arena = Arena.ofShared();
    private final MemorySegment slot;
    private final ByteBuffer slotBytes;
    private final String kind;

    TcpInbound(Endpoint endpoint, LinkControl control, Duration peerTimeout, int maxPayload, boolean tls) {
        super(endpoint, new LinkEnd(endpoint, control, peerTimeout, false, true));
        this.maxPayload = maxPayload;
        this.slot = arena.allocate(Math.max(1, maxPayload), 64);
        this.slotBytes = slot.asByteBuffer();
        this.kind = tls ? "tls" : "tcp";
    }

    @Override
    public DataHeader next() throws IOException {
        while (true) {
            headerBytes.clear();
            end.read(headerBytes, false);
            header.decode(headerBytes.flip(), maxPayload);
            switch (header.type) {
                case DataHeader.CHUNK -> {
                    return header;
                }
                case DataHeader.ABORT -> {
                    abortBytes.clear().limit(header.payloadLength);
                    end.read(abortBytes, true);
                    throw LinkEnd.aborted(abortBytes.flip());
                }
                default -> {
                    // a heartbeat: the read itself proved the neighbour alive
                }
            }
        }
    }

    @Override
    public void payloadInto(BufferView dst, long offset) throws IOException {
        end.read(dst.window(offset, header.payloadLength), true);
    }

    @Override
    public MemorySegment payload() throws IOException {
        end.read(slotBytes.clear().limit(header.payloadLength), true);
        return slot;
    }

    @Override
    public void keepAlive() throws IOException {
        end.keepAlive(false); // reading is paused on purpose, so the neighbour cannot be heard
    }

    @Override
    public String describe() {
        return kind;
    }

    @Override
    public void close() {
        super.close();
        arena.close();
    }
}
