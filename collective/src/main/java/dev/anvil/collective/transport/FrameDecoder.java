package dev.anvil.collective.transport;

import dev.anvil.collective.proto.Header;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.CorruptedFrameException;
import java.util.List;
import java.util.Set;

/**
 * Splits the byte stream into {@link Header}s, validating every size and field before anything is buffered for it: a
 * header length outside {@code 1..maxHeaderBytes}, an unparseable or unknown header, or a message type not allowed on
 * this connection fails the connection at once, so a hostile peer cannot make this process buffer more than one
 * legitimate header.
 */
public final class FrameDecoder extends ByteToMessageDecoder {
    private final int maxHeaderBytes;
    private final Set<Header.BodyCase> allowed;
    private boolean broken;

    /**
     * @param maxHeaderBytes largest serialized header accepted
     * @param allowed message types this connection may receive
     */
    public FrameDecoder(int maxHeaderBytes, Set<Header.BodyCase> allowed) {
        this.maxHeaderBytes = maxHeaderBytes;
        this.allowed = Set.copyOf(allowed);
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (broken) {
            in.skipBytes(in.readableBytes());
            return;
        }
        if (in.readableBytes() < 4) {
            return;
        }
        try {
            int length = Frames.checkLength(in.getInt(in.readerIndex()), maxHeaderBytes);
            if (in.readableBytes() < 4 + length) {
                return;
            }
            Header header = Frames.parse(in.nioBuffer(in.readerIndex() + 4, length), allowed);
            in.skipBytes(4 + length);
            out.add(header);
        } catch (Frames.BadFrameException e) {
            broken = true;
            throw new CorruptedFrameException(e.getMessage());
        }
    }
}
