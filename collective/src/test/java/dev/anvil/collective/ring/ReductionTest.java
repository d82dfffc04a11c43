package dev.anvil.collective.ring;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.anvil.collective.ElementType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The Vector API kernels agree bit for bit with the scalar definition, specials and ragged tails included. A NaN
 * result only has to be a NaN: which input's payload an addition propagates is the hardware's choice.
 */
class ReductionTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest(name = "{0}, {1} elements, divisor {2}")
    @CsvSource({"FLOAT32, 1037, 1", "FLOAT32, 1037, 3", "BFLOAT16, 1037, 1", "BFLOAT16, 1037, 3",
        "BFLOAT16, 5, 1", "FLOAT32, 3, 2"})
    void vectorKernelsMatchTheScalarDefinitionBitForBit(ElementType type, int n, int divisor) {
        Random rnd = new Random(n * 31L + divisor);
        int size = type.byteSize();
        MemorySegment dst = Arena.ofAuto().allocate((long) n * size + 8);
        MemorySegment src = Arena.ofAuto().allocate((long) n * size + 8);
        long dstAt = 8; // unaligned offsets, as slices of a buffer are
        long srcAt = size;
        int[] a = new int[n];
        int[] b = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = special(rnd);
            b[i] = special(rnd);
            if (type == ElementType.FLOAT32) {
                dst.set(F32, dstAt + 4L * i, Float.intBitsToFloat(a[i]));
                src.set(F32, srcAt + 4L * i, Float.intBitsToFloat(b[i]));
            } else {
                dst.set(BF16, dstAt + 2L * i, (short) (a[i] >>> 16));
                src.set(BF16, srcAt + 2L * i, (short) (b[i] >>> 16));
            }
        }
        Reduction.accumulate(type, dst, dstAt, src, srcAt, (long) n * size, divisor);
        for (int i = 0; i < n; i++) {
            if (type == ElementType.FLOAT32) {
                float sum = Float.intBitsToFloat(a[i]) + Float.intBitsToFloat(b[i]);
                float want = divisor == 1 ? sum : sum / divisor;
                float got = dst.get(F32, dstAt + 4L * i);
                if (!(Float.isNaN(want) && Float.isNaN(got))) {
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got), "element " + i);
                }
            } else {
                float sum = Reduction.widen((short) (a[i] >>> 16)) + Reduction.widen((short) (b[i] >>> 16));
                short want = Reduction.narrow(divisor == 1 ? sum : sum / divisor);
                short got = dst.get(BF16, dstAt + 2L * i);
                if (!(Float.isNaN(Reduction.widen(want)) && Float.isNaN(Reduction.widen(got)))) {
                    assertEquals(want, got, "element " + i);
                }
            }
        }
    }

    /** Bits of an ordinary float, or now and then a NaN, an infinity, a subnormal, a zero or a rounding tie. */
    private static int special(Random rnd) {
        return switch (rnd.nextInt(12)) {
            case 0 -> 0x7FC00000 | rnd.nextInt(0x400000); // quiet NaN with payload
            case 1 -> 0x7F800001 + rnd.nextInt(0x3FFFFF); // signalling NaN
            case 2 -> rnd.nextBoolean() ? 0x7F800000 : 0xFF800000; // infinities
            case 3 -> rnd.nextInt(0x800000); // subnormal
            case 4 -> rnd.nextBoolean() ? 0 : 0x80000000; // signed zeros
            case 5 -> (rnd.nextInt() & 0xFFFF0000) | 0x8000; // a bf16 rounding tie
            default -> Float.floatToRawIntBits((rnd.nextFloat() * 2 - 1) * (1 << rnd.nextInt(20)));
        };
    }
}
