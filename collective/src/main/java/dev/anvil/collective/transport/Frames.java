package dev.anvil.collective.transport;

import dev.anvil.collective.proto.Header;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Set;

/**
 * Control frames: a 4-byte big-endian header length, then a serialized {@link Header}. Encoding, and the checks every
 * reader of them applies (the Netty {@link FrameDecoder} and the blocking ring handshake alike).
 */
public final class Frames {
    private Frames() {
    }

    /** A frame that must not be accepted; the message says why, starting with "bad frame: ". */
    public static final class BadFrameException extends IOException {
        BadFrameException(String why) {
            super("bad frame: " + why);
        }
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

    /** The length prefix and serialized header, in a heap buffer ready to write. */
    public static ByteBuffer encode(Header header) {
        ByteBuffer buf = ByteBuffer.allocate(4 + header.getSerializedSize());
        buf.putInt(header.getSerializedSize());
        try {
            CodedOutputStream out = CodedOutputStream.newInstance(buf);
            header.writeTo(out);
            out.flush(); // moves buf's position past what was written
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serialize " + header.getBodyCase(), e);
        }
        return buf.flip();
    }

    /**
     * Checks a length prefix before anything is buffered for it.
     *
     * @return {@code length}, when in {@code 1..maxHeaderBytes}
     */
    public static int checkLength(int length, int maxHeaderBytes) throws BadFrameException {
        if (length <= 0 || length > maxHeaderBytes) {
            throw new BadFrameException("header length " + Integer.toUnsignedString(length) + " outside 1.."
                    + maxHeaderBytes);
        }
        return length;
    }

    /** Parses a serialized header and checks that its message type is known and {@code allowed}. */
    public static Header parse(ByteBuffer bytes, Set<Header.BodyCase> allowed) throws BadFrameException {
        Header header;
        try {
            header = Header.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            throw new BadFrameException("unparseable header: " + e.getMessage());
        }
        Header.BodyCase kind = header.getBodyCase();
        if (kind == Header.BodyCase.BODY_NOT_SET) {
            throw new BadFrameException("unknown message type");
        }
        if (!allowed.contains(kind)) {
            throw new BadFrameException("message " + kind + " not allowed on this connection");
        }
        return header;
    }
}
