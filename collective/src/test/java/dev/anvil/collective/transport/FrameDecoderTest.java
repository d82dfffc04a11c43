package dev.anvil.collective.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.proto.Chunk;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Hello;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import java.util.EnumSet;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FrameDecoderTest {
    private static EmbeddedChannel channel() {
        return new EmbeddedChannel(new FrameDecoder(4096, 1024,
                EnumSet.of(Header.BodyCase.CHUNK, Header.BodyCase.HEARTBEAT)));
    }

    private static ByteBuf chunkHeader(int payloadLength) {
        return Frames.encode(ByteBufAllocator.DEFAULT, Header.newBuilder()
                .setChunk(Chunk.newBuilder().setOpSeq(1).setPayloadLength(payloadLength)).build());
    }

    @Test
    void frameSplitAcrossReadsDecodesWithItsPayload() {
        EmbeddedChannel ch = channel();
        ByteBuf frame = Unpooled.wrappedBuffer(chunkHeader(10), Unpooled.wrappedBuffer(new byte[10]));
        ch.writeInbound(frame.readRetainedSlice(3));
        ch.writeInbound(frame.readRetainedSlice(frame.readableBytes() - 4));
        assertNull(ch.readInbound(), "no frame before its payload arrived");
        ch.writeInbound(frame.readRetainedSlice(4));
        Frame f = ch.readInbound();
        assertEquals(10, f.payload().readableBytes());
        f.payload().release();
        frame.release();
    }

    @Test
    void headerClaimingAHugePayloadIsRefusedBeforeThePayloadIsBuffered() {
        EmbeddedChannel ch = channel();
        // Only the header is sent: the decoder must refuse on the claim alone, not wait for (and buffer) 4 GB.
        var e = assertThrows(DecoderException.class, () -> ch.writeInbound(chunkHeader(0xFFFF_FFF0)));
        assertTrue(e.getMessage().contains("exceeds the limit of 1024"), e.getMessage());
    }

    @Test
    void hugeHeaderLengthIsRefusedFromTheFourLengthBytes() {
        EmbeddedChannel ch = channel();
        var e = assertThrows(DecoderException.class, () -> ch.writeInbound(Unpooled.buffer().writeInt(1 << 30)));
        assertTrue(e.getMessage().contains("header length"), e.getMessage());
    }

    @Test
    void messageTypeNotAllowedOnTheConnectionIsRefused() {
        EmbeddedChannel ch = channel();
        ByteBuf hello = Frames.encode(ByteBufAllocator.DEFAULT,
                Header.newBuilder().setHello(Hello.newBuilder().setRank(1)).build());
        var e = assertThrows(DecoderException.class, () -> ch.writeInbound(hello));
        assertTrue(e.getMessage().contains("HELLO not allowed"), e.getMessage());
    }

    @Test
    void randomBytesNeverEscapeAsAnythingButADecoderError() {
        Random rnd = new Random(1);
        for (int i = 0; i < 2000; i++) {
            EmbeddedChannel ch = channel();
            byte[] junk = new byte[1 + rnd.nextInt(64)];
            rnd.nextBytes(junk);
            if (rnd.nextBoolean()) {
                junk[0] = 0; // a plausible length prefix, so the protobuf parser sees garbage too
                junk[1 % junk.length] = 0;
            }
            try {
                ch.writeInbound(Unpooled.wrappedBuffer(junk));
                Object o;
                while ((o = ch.readInbound()) != null) {
                    ((Frame) o).payload().release();
                }
            } catch (DecoderException expected) {
                // refused: fine
            }
            ch.finishAndReleaseAll();
        }
    }
}
