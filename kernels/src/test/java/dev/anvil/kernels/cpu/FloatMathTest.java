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
    void vectorExpGivesTheScalarBitsAndSumsInLaneOrder() {
        SplittableRandom random = new SplittableRandom(3);
        int n = 4 * S.length();
        float[] in = new float[n + 3];
        float[] exp = new float[n + 5];
        for (int round = 0; round < 5_000; round++) {
            float scale = (float) random.nextDouble(0.1, 2), shift = (float) random.nextDouble(-5, 5);
            for (int i = 0; i < in.length; i++) {
                in[i] = (float) random.nextDouble(-100, 100);
            }
            float sum = VectorMath.exp(in, 3, n, scale, shift, exp, 5);
            float[] lanes = new float[S.length()];
            for (int i = 0; i < n; i++) {
                float expected = FloatMath.exp(in[3 + i] * scale - shift);
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(exp[5 + i]), "exp " + in[3 + i]);
                lanes[i % S.length()] += expected;
            }
            float expectedSum = 0f;
            for (float lane : lanes) {
                expectedSum += lane;
            }
            assertEquals(Float.floatToRawIntBits(expectedSum), Float.floatToRawIntBits(sum), "sum");
        }
    }
}
