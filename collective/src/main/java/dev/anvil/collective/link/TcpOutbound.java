package dev.anvil.collective.link;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * Sending end of a TCP data link: header and payload go out in one gathering write, the payload straight from the
 * caller's buffer. The socket's send buffer is the pipeline: a send waits while it is full. The reverse direction
 * brings the neighbour's heartbeats and aborts.
 */
final class TcpOutbound extends SocketLink implements Outbound {
    private final ByteBuffer headerBytes = ByteBuffer.allocateDirect(DataHeader.BYTES);
    private final ByteBuffer[] frame = new ByteBuffer[2];

    TcpOutbound(Endpoint endpoint, LinkControl control, Duration peerTimeout) {
        super(endpoint, new LinkEnd(endpoint, control, peerTimeout, true, false));
    }

    @Override
    public void send(DataHeader header, BufferView src, long offset) throws IOException {
        headerBytes.clear();
        header.encode(headerBytes);
        frame[0] = headerBytes.flip();
        frame[1] = src.window(offset, header.payloadLength);
        end.write(frame);
    }

    @Override
    public void idle(long nanos) throws IOException {
        end.idle(nanos, true);
    }
}
