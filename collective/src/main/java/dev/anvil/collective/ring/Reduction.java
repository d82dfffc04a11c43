package dev.anvil.collective.ring;

import dev.anvil.collective.ElementType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise kernels over little-endian segments: {@code dst = a + b}, optionally divided by a count, with the
 * Vector API at whatever width this CPU has. bf16 widens to fp32, adds, and rounds back to nearest even (a NaN stays
 * a quiet NaN), lane by lane as {@link #narrow(float)} does, so the vector and scalar paths agree bit for bit.
 */
public final class Reduction {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    /** As many bf16 lanes as F has floats, in half the bits. */
    private static final VectorSpecies<Short> S =
            VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    private Reduction() {
    }

    /**
     * {@code dst[i] = (dst[i] + src[i]) / divisor} for the {@code bytes / type.byteSize()} elements at the given
     * offsets ({@code divisor == 1} just adds).
     */
    public static void accumulate(ElementType type, MemorySegment dst, long dstOffset, MemorySegment src,
            long srcOffset, long bytes, int divisor) {
        sum(type, dst, dstOffset, dst, dstOffset, src, srcOffset, bytes, divisor);
    }

    /**
     * {@code dst[i] = (a[i] + b[i]) / divisor}: the same arithmetic as {@link #accumulate}, with the result written
     * elsewhere ({@code dst} may be {@code a}).
     */
    public static void sum(ElementType type, MemorySegment dst, long d, MemorySegment a, long aOffset,
            MemorySegment b, long bOffset, long bytes, int divisor) {
        switch (type) {
            case FLOAT32 -> sumF32(dst, d, a, aOffset, b, bOffset, bytes, divisor);
            case BFLOAT16 -> sumBf16(dst, d, a, aOffset, b, bOffset, bytes, divisor);
        }
    }

    private static void sumF32(MemorySegment dst, long d, MemorySegment a, long x, MemorySegment b, long y,
            long bytes, int divisor) {
        long step = F.vectorByteSize();
        long bound = bytes - bytes % step;
        long i = 0;
        if (divisor == 1) {
            for (; i < bound; i += step) {
                FloatVector.fromMemorySegment(F, a, x + i, LE).add(FloatVector.fromMemorySegment(F, b, y + i, LE))
                        .intoMemorySegment(dst, d + i, LE);
            }
            for (; i < bytes; i += 4) {
                dst.set(F32, d + i, a.get(F32, x + i) + b.get(F32, y + i));
            }
        } else {
            // Divide rather than multiply by 1/divisor: the result then matches sum/n exactly as a reference would.
            float n = divisor;
            for (; i < bound; i += step) {
                FloatVector.fromMemorySegment(F, a, x + i, LE).add(FloatVector.fromMemorySegment(F, b, y + i, LE))
                        .div(n).intoMemorySegment(dst, d + i, LE);
            }
            for (; i < bytes; i += 4) {
                dst.set(F32, d + i, (a.get(F32, x + i) + b.get(F32, y + i)) / n);
            }
        }
    }

    private static void sumBf16(MemorySegment dst, long d, MemorySegment a, long x, MemorySegment b, long y,
            long bytes, int divisor) {
        long step = S.vectorByteSize();
        long bound = bytes - bytes % step;
        float n = divisor;
        long i = 0;
        for (; i < bound; i += step) {
            FloatVector sum = widen(ShortVector.fromMemorySegment(S, a, x + i, LE))
                    .add(widen(ShortVector.fromMemorySegment(S, b, y + i, LE)));
            narrow(divisor == 1 ? sum : sum.div(n)).intoMemorySegment(dst, d + i, LE);
        }
        for (; i < bytes; i += 2) {
            float sum = widen(a.get(BF16, x + i)) + widen(b.get(BF16, y + i));
            dst.set(BF16, d + i, narrow(divisor == 1 ? sum : sum / n));
        }
    }

    /** bf16 lanes to fp32 lanes: each bf16 is the top half of an fp32. */
    private static FloatVector widen(ShortVector bf16) {
        return ((IntVector) bf16.convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /**
     * fp32 lanes to bf16 lanes, rounding to nearest even. Unlike {@link #narrow(float)} it needs no NaN case: the
     * lanes are sums and quotients of widened bf16 values, so a NaN's low 16 bits are zero (a NaN operand's payload,
     * or the hardware's default NaN) and rounding can neither carry it into the exponent nor leave it signalling.
     */
    private static ShortVector narrow(FloatVector value) {
        IntVector bits = value.reinterpretAsInts();
        IntVector lsb = bits.lanewise(VectorOperators.LSHR, 16).and(1);
        IntVector rounded = bits.add(lsb).add(0x7FFF).lanewise(VectorOperators.LSHR, 16);
        return (ShortVector) rounded.convertShape(VectorOperators.I2S, S, 0);
    }

    /** bf16 bits to fp32: bf16 is the top half of an fp32. */
    public static float widen(short bf16) {
        return Float.intBitsToFloat((bf16 & 0xFFFF) << 16);
    }

    /** fp32 to bf16 bits, rounding to nearest even. */
    public static short narrow(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
