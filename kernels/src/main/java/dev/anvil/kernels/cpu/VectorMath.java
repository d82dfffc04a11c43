package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static dev.anvil.kernels.cpu.FloatMath.EXP_MAX;
import static dev.anvil.kernels.cpu.FloatMath.EXP_MIN;
import static dev.anvil.kernels.cpu.FloatMath.LN2_HI;
import static dev.anvil.kernels.cpu.FloatMath.LN2_LO;
import static dev.anvil.kernels.cpu.FloatMath.LOG2E;
import static dev.anvil.kernels.cpu.FloatMath.P0;
import static dev.anvil.kernels.cpu.FloatMath.P1;
import static dev.anvil.kernels.cpu.FloatMath.P2;
import static dev.anvil.kernels.cpu.FloatMath.P3;
import static dev.anvil.kernels.cpu.FloatMath.P4;
import static dev.anvil.kernels.cpu.FloatMath.P5;
import static dev.anvil.kernels.cpu.FloatMath.ROUNDER;
import static dev.anvil.kernels.cpu.FloatMath.ROUNDER_BITS;

/**
 * The lane-wise twin of {@link FloatMath#exp}, operation for operation, so every lane gives the
 * bits the scalar version gives, with the lanes' sum added in a fixed order. Both are deterministic
 * whether the Vector API runs interpreted or compiled ({@code reduceLanes(ADD)} and
 * {@code lanewise(EXP)} are not: their rounding changes when C2 takes over).
 *
 * <p>It works on arrays, never on a vector argument: a vector passed to or returned from a call that
 * C2 declines to inline (as it may, by its size heuristics, once the callee has been compiled on its
 * own) is boxed, and the callee then runs the Vector API's slow fallback, allocating every vector.
 */
final class VectorMath {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Floats in a {@link #scratch()} row: 64 vectors, small enough to stay in L1. */
    static final int SCRATCH_LENGTH = 64 * S.length();
    /** Each thread's staging row, for callers that need exponentials beside their input. */
    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[SCRATCH_LENGTH]);

    private VectorMath() {
    }

    /** This thread's staging row of {@link #SCRATCH_LENGTH} floats. */
    static float[] scratch() {
        return SCRATCH.get();
    }

    /**
     * {@code dst[d + i] = exp(src[s + i]·scale - shift)} for the first {@code len} values (a whole
     * number of vectors; {@code dst} may be {@code src}), returning their sum, lanes added from lane 0
     * upwards after the vectors are added lane-wise. The exponential and the affine step are the
     * scalar {@code FloatMath.exp(x * scale - shift)}'s operations, in its order.
     */
    static float exp(float[] src, int s, int len, float scale, float shift, float[] dst, int d) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = 0; i < len; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, src, s + i).mul(scale).sub(shift);
            x = x.max(EXP_MIN).min(EXP_MAX);
            FloatVector t = x.fma(LOG2E, ROUNDER);
            FloatVector k = t.sub(ROUNDER);
            FloatVector r = k.fma(FloatVector.broadcast(S, -LN2_HI), x);
            r = k.fma(FloatVector.broadcast(S, -LN2_LO), r);
            FloatVector p = r.fma(P0, P1);
            p = p.fma(r, FloatVector.broadcast(S, P2));
            p = p.fma(r, FloatVector.broadcast(S, P3));
            p = p.fma(r, FloatVector.broadcast(S, P4));
            p = p.fma(r, FloatVector.broadcast(S, P5));
            p = p.fma(r.mul(r), r).add(1f);
            IntVector bits = ((IntVector) t.reinterpretAsInts()).sub(ROUNDER_BITS - 127).lanewise(VectorOperators.LSHL, 23);
            FloatVector e = p.mul(bits.reinterpretAsFloats());
            e.intoArray(dst, d + i);
            acc = acc.add(e);
        }
        float sum = 0f;
        for (int lane = 0; lane < S.length(); lane++) {
            sum += acc.lane(lane);
        }
        return sum;
    }
}
