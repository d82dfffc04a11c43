package dev.anvil.collective.transport;

import dev.anvil.collective.proto.Header;
import com.google.protobuf.CodedOutputStream;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.io.IOException;
import java.io.UncheckedIOException;

/** Encodes frames: a 4-byte big-endian header length, then the header. A chunk's payload is written after it. */
public final class Frames {
    private Frames() {
    }

    /** The length prefix and serialized header, in one buffer from {@code alloc}. */
    public static ByteBuf encode(ByteBufAllocator alloc, Header header) {
        int size = header.getSerializedSize();
        ByteBuf buf = alloc.buffer(4 + size);
        buf.writeInt(size);
        try {
            CodedOutputStream out = CodedOutputStream.newInstance(buf.nioBuffer(buf.writerIndex(), size));
            header.writeTo(out);
            out.flush();
        } catch (IOException e) {
            buf.release();
            throw new UncheckedIOException("cannot serialize " + header.getBodyCase(), e);
        }
        buf.writerIndex(buf.writerIndex() + size);
        return buf;
    }
}
