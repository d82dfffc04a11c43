package dev.anvil.collective.link;

import dev.anvil.collective.proto.OpKind;
import dev.anvil.collective.proto.WireElementType;
import dev.anvil.collective.proto.WireReduceOp;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The fixed binary header of every frame on a data link once its handshake is done: {@value #BYTES} little-endian
 * bytes, so that a receiver knows where a chunk's payload goes before it reads it, and parsing costs no allocation.
 * One instance is reused for every frame of a link.
 *
 * <pre>
 *  0  u32 magic "ANVD"
 *  4  u8  frame type: 1 chunk, 2 heartbeat, 3 abort
 *  5  u8  op kind (proto OpKind)          chunks only, else 0
 *  6  u8  element type (WireElementType)  chunks only, 0 for broadcast
 *  7  u8  reduce op (WireReduceOp)        chunks only, 0 when nothing is reduced
 *  8  u64 op sequence number
 * 16  u64 elements in the whole buffer (bytes for a broadcast)
 * 24  u32 step
 * 28  u32 slice
 * 32  i32 broadcast root, -1 otherwise
 * 36  u32 payload length: the chunk's bytes, or an abort's serialized proto Abort
 * 40  u32 channel
 * 44  u32 zero
 * </pre>
 */
public final class DataHeader {
    /** Header size in bytes. */
    public static final int BYTES = 48;
    /** "ANVD" read as a little-endian int. */
    static final int MAGIC = 0x44564E41;
    /** Largest serialized Abort accepted. */
    public static final int MAX_ABORT_BYTES = 4096;

    /** Frame types. */
    public static final int CHUNK = 1;
    public static final int HEARTBEAT = 2;
    public static final int ABORT = 3;

    public int type;
    public OpKind kind = OpKind.OP_KIND_UNSPECIFIED;
    public WireElementType elementType = WireElementType.WIRE_ELEMENT_TYPE_UNSPECIFIED;
    public WireReduceOp reduceOp = WireReduceOp.WIRE_REDUCE_OP_UNSPECIFIED;
    public long opSeq;
    public long elementCount;
    public int step;
    public int slice;
    public int root = -1;
    public int payloadLength;
    public int channel;

    /** Makes this a heartbeat or abort header (no chunk fields) with {@code payloadLength} bytes after it. */
    public DataHeader control(int frameType, int payloadLength) {
        type = frameType;
        kind = OpKind.OP_KIND_UNSPECIFIED;
        elementType = WireElementType.WIRE_ELEMENT_TYPE_UNSPECIFIED;
        reduceOp = WireReduceOp.WIRE_REDUCE_OP_UNSPECIFIED;
        opSeq = 0;
        elementCount = 0;
        step = 0;
        slice = 0;
        root = -1;
        this.payloadLength = payloadLength;
        channel = 0;
        return this;
    }

    /** Writes the header at {@code out}'s position, advancing it. */
    public void encode(ByteBuffer out) {
        ByteOrder order = out.order();
        out.order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(MAGIC)
                .put((byte) type)
                .put((byte) kind.getNumber())
                .put((byte) elementType.getNumber())
                .put((byte) reduceOp.getNumber())
                .putLong(opSeq)
                .putLong(elementCount)
                .putInt(step)
                .putInt(slice)
                .putInt(root)
                .putInt(payloadLength)
                .putInt(channel)
                .putInt(0);
        out.order(order);
    }

    /**
     * Reads a header from {@code in}'s next {@value #BYTES} bytes and checks it before anything is read for its
     * payload.
     *
     * @param maxChunkPayload largest chunk payload accepted (the ring's slice size)
     * @throws ProtocolException naming what is wrong: not a data frame, unknown type, unknown codes, or a payload
     *     larger than allowed
     */
    public void decode(ByteBuffer in, int maxChunkPayload) throws ProtocolException {
        ByteOrder order = in.order();
        in.order(ByteOrder.LITTLE_ENDIAN);
        try {
            int magic = in.getInt();
            if (magic != MAGIC) {
                throw new ProtocolException(String.format("bad frame: magic 0x%08x is not an Anvil data frame", magic));
            }
            type = in.get() & 0xFF;
            int kindCode = in.get() & 0xFF;
            int typeCode = in.get() & 0xFF;
            int reduceCode = in.get() & 0xFF;
            opSeq = in.getLong();
            elementCount = in.getLong();
            step = in.getInt();
            slice = in.getInt();
            root = in.getInt();
            payloadLength = in.getInt();
            channel = in.getInt();
            int zero = in.getInt();
            kind = OpKind.forNumber(kindCode);
            elementType = WireElementType.forNumber(typeCode);
            reduceOp = WireReduceOp.forNumber(reduceCode);
            if (kind == null || elementType == null || reduceOp == null || zero != 0) {
                throw new ProtocolException("bad frame: unparseable header (op kind " + kindCode + ", element type "
                        + typeCode + ", reduce op " + reduceCode + ", reserved " + zero + ")");
            }
            long length = Integer.toUnsignedLong(payloadLength);
            switch (type) {
                case CHUNK -> {
                    if (length > maxChunkPayload) {
                        throw new ProtocolException("bad frame: chunk payload of " + length
                                + " bytes exceeds the slice size of " + maxChunkPayload);
                    }
                }
                case HEARTBEAT -> {
                    if (length != 0) {
                        throw new ProtocolException("bad frame: heartbeat with a payload of " + length + " bytes");
                    }
                }
                case ABORT -> {
                    if (length > MAX_ABORT_BYTES) {
                        throw new ProtocolException("bad frame: abort of " + length + " bytes exceeds the limit of "
                                + MAX_ABORT_BYTES);
                    }
                }
                default -> throw new ProtocolException("bad frame: unknown frame type " + type);
            }
        } finally {
            in.order(order);
        }
    }
}
