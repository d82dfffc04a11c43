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
 * Element-wise kernels over little-endian segments: {@code dst = dst + src}, optionally divided by a count, with the
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
        switch (type) {
            case FLOAT32 -> accumulateF32(dst, dstOffset, src, srcOffset, bytes, divisor);
            case BFLOAT16 -> accumulateBf16(dst, dstOffset, src, srcOffset, bytes, divisor);
        }
    }

    private static void accumulateF32(MemorySegment dst, long d, MemorySegment src, long s, long bytes, int divisor) {
        long step = F.vectorByteSize();
        long bound = bytes - bytes % step;
        long i = 0;
        if (divisor == 1) {
            for (; i < bound; i += step) {
                FloatVector a = FloatVector.fromMemorySegment(F, dst, d + i, LE);
                FloatVector b = FloatVector.fromMemorySegment(F, src, s + i, LE);
                a.add(b).intoMemorySegment(dst, d + i, LE);
            }
            for (; i < bytes; i += 4) {
                dst.set(F32, d + i, dst.get(F32, d + i) + src.get(F32, s + i));
            }
        } else {
            // Divide rather than multiply by 1/divisor: the result then matches sum/n exactly as a reference would.
            float n = divisor;
            for (; i < bound; i += step) {
                FloatVector a = FloatVector.fromMemorySegment(F, dst, d + i, LE);
                FloatVector b = FloatVector.fromMemorySegment(F, src, s + i, LE);
                a.add(b).div(n).intoMemorySegment(dst, d + i, LE);
            }
            for (; i < bytes; i += 4) {
                dst.set(F32, d + i, (dst.get(F32, d + i) + src.get(F32, s + i)) / n);
            }
        }
    }

    private static void accumulateBf16(MemorySegment dst, long d, MemorySegment src, long s, long bytes,
            int divisor) {
        long step = S.vectorByteSize();
        long bound = bytes - bytes % step;
        float n = divisor;
        long i = 0;
        for (; i < bound; i += step) {
            FloatVector sum = widen(ShortVector.fromMemorySegment(S, dst, d + i, LE))
                    .add(widen(ShortVector.fromMemorySegment(S, src, s + i, LE)));
            narrow(divisor == 1 ? sum : sum.div(n)).intoMemorySegment(dst, d + i, LE);
        }
        for (; i < bytes; i += 2) {
            float sum = widen(dst.get(BF16, d + i)) + widen(src.get(BF16, s + i));
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
