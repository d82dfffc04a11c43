package dev.anvil.collective.ring;

import dev.anvil.collective.ElementType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise kernels over little-endian segments: {@code dst = dst + src}, optionally divided by a count. fp32
 * uses the Vector API; bf16 widens to fp32, adds, and rounds back to nearest even (a NaN stays a quiet NaN).
 */
public final class Reduction {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    private Reduction() {
    }

    /**
     * {@code dst[i] = (dst[i] + src[i]) / divisor} for every element ({@code divisor == 1} just adds).
     *
     * @param dst accumulator, same size as {@code src}
     */
    public static void accumulate(ElementType type, MemorySegment dst, MemorySegment src, int divisor) {
        switch (type) {
            case FLOAT32 -> accumulateF32(dst, src, divisor);
            case BFLOAT16 -> accumulateBf16(dst, src, divisor);
        }
    }

    private static void accumulateF32(MemorySegment dst, MemorySegment src, int divisor) {
        long bytes = dst.byteSize();
        long vectorBytes = F.vectorByteSize();
        long bound = bytes - bytes % vectorBytes;
        long i = 0;
        if (divisor == 1) {
            for (; i < bound; i += vectorBytes) {
                FloatVector a = FloatVector.fromMemorySegment(F, dst, i, LE);
                FloatVector b = FloatVector.fromMemorySegment(F, src, i, LE);
                a.add(b).intoMemorySegment(dst, i, LE);
            }
            for (; i < bytes; i += 4) {
                dst.set(F32, i, dst.get(F32, i) + src.get(F32, i));
            }
        } else {
            // Divide rather than multiply by 1/divisor: the result then matches sum/n exactly as a reference would.
            float n = divisor;
            for (; i < bound; i += vectorBytes) {
                FloatVector a = FloatVector.fromMemorySegment(F, dst, i, LE);
                FloatVector b = FloatVector.fromMemorySegment(F, src, i, LE);
                a.add(b).div(n).intoMemorySegment(dst, i, LE);
            }
            for (; i < bytes; i += 4) {
                dst.set(F32, i, (dst.get(F32, i) + src.get(F32, i)) / n);
            }
        }
    }

    private static void accumulateBf16(MemorySegment dst, MemorySegment src, int divisor) {
        long bytes = dst.byteSize();
        float n = divisor;
        for (long i = 0; i < bytes; i += 2) {
            float sum = widen(dst.get(BF16, i)) + widen(src.get(BF16, i));
            dst.set(BF16, i, narrow(divisor == 1 ? sum : sum / n));
        }
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
