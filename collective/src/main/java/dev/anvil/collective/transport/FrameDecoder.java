package dev.anvil.collective.transport;

import dev.anvil.collective.proto.Header;
import com.google.protobuf.InvalidProtocolBufferException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.CorruptedFrameException;
import java.util.List;
import java.util.Set;

/**
 * Splits the byte stream into {@link Frame}s, validating every size and field before anything is buffered for it: a
 * header longer than {@code maxHeaderBytes}, an unparseable or unknown header, a message type not allowed on this
 * connection, or a payload larger than {@code maxPayloadBytes} fails the connection at once, so a hostile peer cannot
 * make this process allocate more than one legitimate frame.
 */
public final class FrameDecoder extends ByteToMessageDecoder {
    private final int maxHeaderBytes;
    private int maxPayloadBytes;
    private Set<Header.BodyCase> allowed;

    private Header pending;
    private int pendingPayload;
    private boolean broken;

    /**
     * @param maxHeaderBytes largest serialized header accepted
     * @param maxPayloadBytes largest chunk payload accepted (the ring's slice size; 0 on control connections)
     * @param allowed message types this connection may receive
     */
    public FrameDecoder(int maxHeaderBytes, int maxPayloadBytes, Set<Header.BodyCase> allowed) {
        this.maxHeaderBytes = maxHeaderBytes;
        this.maxPayloadBytes = maxPayloadBytes;
        this.allowed = Set.copyOf(allowed);
    }

    /**
     * Changes what this connection may receive from now on, e.g. chunks only after the peer authenticated. Call on the
     * channel's event loop.
     */
    public void relimit(int maxPayloadBytes, Set<Header.BodyCase> allowed) {
        this.maxPayloadBytes = maxPayloadBytes;
        this.allowed = Set.copyOf(allowed);
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (broken) {
            in.skipBytes(in.readableBytes());
            return;
        }
        if (pending == null && !readHeader(in)) {
            return;
        }
        if (in.readableBytes() < pendingPayload) {
            return;
        }
        ByteBuf payload = pendingPayload == 0 ? Unpooled.EMPTY_BUFFER : in.readRetainedSlice(pendingPayload);
        out.add(new Frame(pending, payload));
        pending = null;
    }

    private boolean readHeader(ByteBuf in) {
        if (in.readableBytes() < 4) {
            return false;
        }
        int length = in.getInt(in.readerIndex());
        if (length <= 0 || length > maxHeaderBytes) {
            throw corrupt("header length " + Integer.toUnsignedString(length) + " outside 1.." + maxHeaderBytes);
        }
        if (in.readableBytes() < 4 + length) {
            return false;
        }
        Header header;
        try {
            header = Header.parseFrom(in.nioBuffer(in.readerIndex() + 4, length));
        } catch (InvalidProtocolBufferException e) {
            throw corrupt("unparseable header: " + e.getMessage());
        }
        in.skipBytes(4 + length);
        Header.BodyCase kind = header.getBodyCase();
        if (kind == Header.BodyCase.BODY_NOT_SET) {
            throw corrupt("unknown message type");
        }
        if (!allowed.contains(kind)) {
            throw corrupt("message " + kind + " not allowed on this connection");
        }
        long payload = kind == Header.BodyCase.CHUNK ? Integer.toUnsignedLong(header.getChunk().getPayloadLength()) : 0;
        if (payload > maxPayloadBytes) {
            throw corrupt("payload of " + payload + " bytes exceeds the limit of " + maxPayloadBytes);
        }
        pending = header;
        pendingPayload = (int) payload;
        return true;
    }

    private CorruptedFrameException corrupt(String why) {
        broken = true;
        return new CorruptedFrameException("bad frame: " + why);
    }
}
