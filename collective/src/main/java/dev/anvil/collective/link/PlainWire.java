package dev.anvil.collective.link;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/** An unencrypted wire: reads land directly in the caller's buffer, writes go directly from it. */
final class PlainWire implements Wire {
    private final SocketChannel socket;

    PlainWire(SocketChannel socket) {
        this.socket = socket;
    }

    @Override
    public SocketChannel socket() {
        return socket;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        return socket.read(dst);
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        return socket.write(srcs);
    }

    @Override
    public boolean flush() {
        return true;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
