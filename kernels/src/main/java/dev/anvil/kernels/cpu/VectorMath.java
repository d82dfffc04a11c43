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
 * bits the scalar version gives; and a sum of lanes in a fixed order. Both are deterministic whether the
 * Vector API runs interpreted or compiled ({@code reduceLanes(ADD)} and {@code lanewise(EXP)} are
 * not: their rounding changes when C2 takes over).
 */
final class VectorMath {

    private VectorMath() {
    }

    static FloatVector exp(FloatVector x) {
        VectorSpecies<Float> s = x.species();
        x = x.max(EXP_MIN).min(EXP_MAX);
        FloatVector t = x.fma(LOG2E, ROUNDER);
        FloatVector k = t.sub(ROUNDER);
        FloatVector r = k.fma(FloatVector.broadcast(s, -LN2_HI), x);
        r = k.fma(FloatVector.broadcast(s, -LN2_LO), r);
        FloatVector p = r.fma(P0, P1);
        p = p.fma(r, FloatVector.broadcast(s, P2));
        p = p.fma(r, FloatVector.broadcast(s, P3));
        p = p.fma(r, FloatVector.broadcast(s, P4));
        p = p.fma(r, FloatVector.broadcast(s, P5));
        p = p.fma(r.mul(r), r).add(1f);
        IntVector bits = ((IntVector) t.reinterpretAsInts()).sub(ROUNDER_BITS - 127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** The lanes' sum, added from lane 0 upwards. */
    static float sum(FloatVector v) {
        float s = 0f;
        for (int i = 0; i < v.length(); i++) {
            s += v.lane(i);
        }
        return s;
    }
}
