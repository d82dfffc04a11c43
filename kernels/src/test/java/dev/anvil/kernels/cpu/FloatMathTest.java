package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FloatMathTest {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    @Test
    void expIsWithinThreeUlpOfMathExp() {
        SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < 200_000; i++) {
            float x = (float) random.nextDouble(-87, 88);
            float exact = (float) Math.exp(x);
            float ulps = Math.abs(FloatMath.exp(x) - exact) / Math.ulp(exact);
            assertTrue(ulps <= 3, "exp(" + x + ") is " + ulps + " ulp off");
        }
        assertEquals(1f, FloatMath.exp(0f));
        assertTrue(FloatMath.exp(-1000f) >= 0f && FloatMath.exp(-1000f) < 1e-37f, "tiny inputs clamp to ~0");
    }

    @Test
    void vectorExpGivesTheScalarBits() {
        SplittableRandom random = new SplittableRandom(3);
        float[] in = new float[S.length()];
        float[] exp = new float[S.length()];
        for (int round = 0; round < 20_000; round++) {
            for (int i = 0; i < in.length; i++) {
                in[i] = (float) random.nextDouble(-100, 100);
            }
            FloatVector v = FloatVector.fromArray(S, in, 0);
            VectorMath.exp(v).intoArray(exp, 0);
            for (int i = 0; i < in.length; i++) {
                assertEquals(Float.floatToRawIntBits(FloatMath.exp(in[i])), Float.floatToRawIntBits(exp[i]), "exp " + in[i]);
            }
        }
    }

    @Test
    void laneSumAddsInLaneOrder() {
        float[] lanes = new float[S.length()];
        float expected = 0f;
        for (int i = 0; i < lanes.length; i++) {
            lanes[i] = 1f / (i + 3);
            expected += lanes[i];
        }
        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(VectorMath.sum(FloatVector.fromArray(S, lanes, 0))));
    }
}
