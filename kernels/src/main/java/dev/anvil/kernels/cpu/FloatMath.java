package dev.anvil.kernels.cpu;

/**
 * {@code exp} in float, built only from IEEE operations (add, multiply, divide,
 * fused multiply-add, bit shifts) so that they give the same bits in the interpreter and in
 * compiled code, and the same bits as their lane-wise twins in {@link VectorMath}.
 *
 * <p>Why not {@code Math.exp} and the Vector API's {@code EXP}: the vector op is computed by SVML
 * once C2 compiles it and lane by lane through {@code Math.exp} before, so a run's first steps
 * would round differently from later ones and a resumed run would not repeat an uninterrupted one
 * bit for bit. The polynomial is Cephes' {@code expf}, accurate to about 2 ulp.
 */
final class FloatMath {

    static final float LOG2E = 1.44269504088896341f;
    static final float LN2_HI = 0.693359375f;
    static final float LN2_LO = -2.12194440e-4f;
    /** 1.5·2²³: adding it rounds a float to an integer held in the low mantissa bits. */
    static final float ROUNDER = 12582912f;
    static final int ROUNDER_BITS = Float.floatToRawIntBits(ROUNDER);
    /** Inputs are clamped here, so the power of two stays a normal float. */
    static final float EXP_MIN = -87.33654f;
    static final float EXP_MAX = 88f;
    static final float P0 = 1.9875691500e-4f;
    static final float P1 = 1.3981999507e-3f;
    static final float P2 = 8.3334519073e-3f;
    static final float P3 = 4.1665795894e-2f;
    static final float P4 = 1.6666665459e-1f;
    static final float P5 = 5.0000001201e-1f;

    private FloatMath() {
    }

    /** e<sup>x</sup>, for x clamped to [{@value #EXP_MIN}, {@value #EXP_MAX}]. */
    static float exp(float x) {
        x = Math.min(Math.max(x, EXP_MIN), EXP_MAX);
        float t = Math.fma(x, LOG2E, ROUNDER);
        float k = t - ROUNDER;
        float r = Math.fma(k, -LN2_HI, x);
        r = Math.fma(k, -LN2_LO, r);
        float p = Math.fma(P0, r, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        p = Math.fma(p, r * r, r) + 1f;
        int bits = (Float.floatToRawIntBits(t) - ROUNDER_BITS + 127) << 23;
        return p * Float.intBitsToFloat(bits);
    }
}
