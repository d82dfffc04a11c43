package dev.anvil.collective.link;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.proto.OpKind;
import dev.anvil.collective.proto.WireElementType;
import dev.anvil.collective.proto.WireReduceOp;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The binary data-frame header: what it writes reads back, and each kind of bad header is refused for its reason. */
class DataHeaderTest {
    private static final int SLICE = 1 << 16;

    private static DataHeader chunk() {
        DataHeader h = new DataHeader();
        h.type = DataHeader.CHUNK;
        h.kind = OpKind.ALL_REDUCE;
        h.elementType = WireElementType.BFLOAT16;
        h.reduceOp = WireReduceOp.MEAN;
        h.opSeq = 0x0123_4567_89AB_CDEFL;
        h.elementCount = 5_000_000_001L;
        h.step = 5;
        h.slice = 77;
        h.root = -1;
        h.payloadLength = SLICE;
        h.channel = 3;
        return h;
    }

    private static ByteBuffer bytes(DataHeader h) {
        ByteBuffer b = ByteBuffer.allocate(DataHeader.BYTES);
        h.encode(b);
        assertEquals(DataHeader.BYTES, b.position());
        return b.flip();
    }

    private static String refusal(ByteBuffer b) {
        return assertThrows(ProtocolException.class, () -> new DataHeader().decode(b, SLICE)).getMessage();
    }

    @Test
    void encodedHeaderDecodesToTheSameFieldsInLittleEndian() throws Exception {
        ByteBuffer b = bytes(chunk());
        assertEquals(0x44564E41, b.order(ByteOrder.LITTLE_ENDIAN).getInt(0), "magic \"ANVD\" little-endian");
        DataHeader back = new DataHeader();
        back.decode(b, SLICE);
        DataHeader want = chunk();
        assertEquals(want.opSeq, back.opSeq);
        assertEquals(want.elementCount, back.elementCount);
        assertEquals(want.kind, back.kind);
        assertEquals(want.elementType, back.elementType);
        assertEquals(want.reduceOp, back.reduceOp);
        assertEquals(want.step, back.step);
        assertEquals(want.slice, back.slice);
        assertEquals(want.root, back.root);
        assertEquals(want.payloadLength, back.payloadLength);
        assertEquals(want.channel, back.channel);
    }

    @Test
    void chunkClaimingMoreThanASliceIsRefusedByItsLength() {
        DataHeader h = chunk();
        h.payloadLength = -16; // 4 GB - 16 as an unsigned length
        assertTrue(refusal(bytes(h)).contains("chunk payload of 4294967280 bytes exceeds the slice size of 65536"));
    }

    @Test
    void abortLongerThanItsLimitIsRefused() {
        DataHeader h = new DataHeader().control(DataHeader.ABORT, DataHeader.MAX_ABORT_BYTES + 1);
        assertTrue(refusal(bytes(h)).contains("abort of 4097 bytes exceeds the limit of 4096"));
    }

    @Test
    void heartbeatCarryingAPayloadIsRefused() {
        assertTrue(refusal(bytes(new DataHeader().control(DataHeader.HEARTBEAT, 1))).contains("heartbeat with a payload"));
    }

    @Test
    void wrongMagicIsRefused() {
        ByteBuffer b = bytes(chunk());
        b.put(0, (byte) 'X');
        assertTrue(refusal(b).contains("is not an Anvil data frame"));
    }

    @Test
    void unknownFrameTypeIsRefused() {
        ByteBuffer b = bytes(chunk());
        b.put(4, (byte) 9);
        assertTrue(refusal(b).contains("unknown frame type 9"));
    }

    @Test
    void unknownCodesAndReservedBitsMakeTheHeaderUnparseable() {
        for (int offset : new int[] {5, 6, 7, 44}) {
            ByteBuffer b = bytes(chunk());
            b.put(offset, (byte) 0x7F);
            assertTrue(refusal(b).contains("unparseable header"), "byte " + offset);
        }
    }

    @Test
    void randomBytesAreRefusedForAStatedReason() {
        Random rnd = new Random(7);
        for (int i = 0; i < 10_000; i++) {
            byte[] junk = new byte[DataHeader.BYTES];
            rnd.nextBytes(junk);
            if (i % 2 == 0) {
                ByteBuffer.wrap(junk).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 0x44564E41); // get past the magic
            }
            String why = refusal(ByteBuffer.wrap(junk));
            assertTrue(why.startsWith("bad frame: "), why);
        }
    }
}
