package dev.anvil.kernels;

/**
 * Conversions between float32 and bfloat16 bit patterns, rounding as CUDA's
 * {@code __float2bfloat16_rn} does: used for bf16 files and by the CPU backend's bf16 emulation.
 */
public final class BFloat16 {

    private BFloat16() {
    }

    /** The float32 value of the bfloat16 {@code bits}; exact, as bf16 is float32's upper half. */
    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /**
     * {@code value} as bfloat16 bits, rounded to nearest, ties to even. NaN stays NaN (with its
     * sign); rounding alone could carry a NaN's low payload bits into infinity.
     */
    public static short fromFloat(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7fff + lsb) >>> 16);
    }

    /** {@code value} rounded to the nearest bfloat16, as a float32. */
    public static float round(float value) {
        return toFloat(fromFloat(value));
    }
}
