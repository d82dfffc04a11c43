package dev.anvil.collective.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Hello;
import dev.anvil.collective.proto.Join;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class FrameDecoderTest {
    private static final int MAX_HEADER = 256;

    private static EmbeddedChannel channel() {
        return new EmbeddedChannel(new FrameDecoder(MAX_HEADER,
                EnumSet.of(Header.BodyCase.JOIN, Header.BodyCase.HEARTBEAT)));
    }

    private static ByteBuf encode(Header h) {
        return Frames.encode(ByteBufAllocator.DEFAULT, h);
    }

    private static Header join(int fingerprintChars) {
        return Header.newBuilder().setJoin(Join.newBuilder().setRank(1).setWorldSize(2)
                .setFingerprint("f".repeat(fingerprintChars))).build();
    }

    /** Feeds {@code bytes} and returns the refusal's message; fails when the decoder accepts them. */
    private static String refusal(ByteBuf bytes) {
        EmbeddedChannel ch = channel();
        DecoderException e = assertThrows(DecoderException.class, () -> ch.writeInbound(bytes));
        assertNull(ch.readInbound(), "nothing may be delivered from a refused stream");
        return e.getMessage();
    }

    @Test
    void frameSplitAcrossReadsDecodesOnceComplete() {
        EmbeddedChannel ch = channel();
        ByteBuf frame = encode(join(10));
        ch.writeInbound(frame.readRetainedSlice(3));
        ch.writeInbound(frame.readRetainedSlice(frame.readableBytes() - 4));
        assertNull(ch.readInbound(), "no header before all its bytes arrived");
        ch.writeInbound(frame.readRetainedSlice(4));
        assertEquals(join(10), ch.readInbound());
        frame.release();
    }

    @Test
    void headerLengthBeyondTheLimitIsRefusedFromTheFourLengthBytes() {
        assertTrue(refusal(Unpooled.buffer().writeInt(1 << 30)).contains("header length 1073741824 outside 1..256"));
        assertTrue(refusal(Unpooled.buffer().writeInt(-1)).contains("header length 4294967295 outside"));
        assertTrue(refusal(Unpooled.buffer().writeInt(0)).contains("header length 0 outside"));
    }

    @Test
    void anAllowedTypeLongerThanTheLimitIsRefusedBeforeItsBodyIsBuffered() {
        ByteBuf oversized = encode(join(MAX_HEADER));
        // Only the length prefix and a few bytes: the claim alone must be refused.
        assertTrue(refusal(oversized.retainedSlice(0, 8)).contains("outside 1..256"));
        oversized.release();
    }

    @Test
    void completeButUnparseableHeaderIsRefused() {
        ByteBuf garbage = Unpooled.buffer().writeInt(3).writeBytes(new byte[] {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF});
        assertTrue(refusal(garbage).contains("unparseable header"));
    }

    @Test
    void headerOfAnUnknownMessageTypeIsRefused() {
        // Field 15 (varint 1): a message type this version does not know; protobuf keeps it as an unknown field.
        ByteBuf unknown = Unpooled.buffer().writeInt(2).writeBytes(new byte[] {(byte) (15 << 3), 1});
        assertTrue(refusal(unknown).contains("unknown message type"));
    }

    @Test
    void messageTypeNotAllowedOnTheConnectionIsRefused() {
        ByteBuf hello = encode(Header.newBuilder().setHello(Hello.newBuilder().setRank(1)).build());
        assertTrue(refusal(hello).contains("HELLO not allowed"));
    }

    @Test
    void truncatedFrameDeliversNothing() {
        EmbeddedChannel ch = channel();
        ByteBuf frame = encode(join(20));
        ch.writeInbound(frame.retainedSlice(0, frame.readableBytes() - 1));
        assertFalse(ch.finish(), "a frame missing its last byte must not be delivered, even when the peer closes");
        frame.release();
    }

    @Test
    void afterARefusalNothingMoreIsDecoded() {
        EmbeddedChannel ch = channel();
        ByteBuf stream = Unpooled.buffer().writeInt(0).writeBytes(encode(join(1)));
        assertThrows(DecoderException.class, () -> ch.writeInbound(stream));
        ch.writeInbound(encode(join(2)));
        assertNull(ch.readInbound());
    }

    @Test
    void randomBytesAreRefusedForAStatedReasonOrDecodeToAnAllowedType() {
        // The deterministic cases above pin each refusal; this sweep checks that no garbage slips between them, and
        // that it reaches the refusal branches garbage can reach (a sweep that only ever hit the length check would prove little).
        List<String> reasons = List.of("header length", "unparseable header", "unknown message type", "not allowed");
        Map<String, Integer> seen = new TreeMap<>();
        Random rnd = new Random(1);
        for (int i = 0; i < 2000; i++) {
            EmbeddedChannel ch = channel();
            byte[] junk = new byte[1 + rnd.nextInt(64)];
            rnd.nextBytes(junk);
            if (rnd.nextBoolean() && junk.length > 4) {
                junk[0] = 0; // a plausible length prefix, so the protobuf parser sees the rest
                junk[1] = 0;
                junk[2] = 0;
                junk[3] = (byte) (junk.length - 4);
            }
            try {
                ch.writeInbound(Unpooled.wrappedBuffer(junk));
            } catch (DecoderException e) {
                String message = e.getMessage();
                String reason = reasons.stream().filter(message::contains).findFirst()
                        .orElseGet(() -> fail("refused for an unexpected reason: " + message));
                seen.merge(reason, 1, Integer::sum);
            }
            Object o;
            while ((o = ch.readInbound()) != null) {
                Header h = (Header) o;
                assertTrue(h.hasJoin() || h.hasHeartbeat(), "decoded a type the connection does not allow: " + h);
            }
            ch.finishAndReleaseAll();
        }
        // Garbage that parses into a known message of another type is too rare to expect; its own case covers it.
        assertTrue(seen.keySet().containsAll(List.of("header length", "unparseable header", "unknown message type")),
                "refusals seen: " + seen);
    }
}
