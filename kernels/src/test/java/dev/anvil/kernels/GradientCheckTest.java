package dev.anvil.kernels;

import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The conformance suite's own helpers: the comparison must be able to fail, bf16 rounding must be right. */
class GradientCheckTest {

    @Test
    void assertCloseAcceptsFloatRoundingAndRejectsLargerErrors() {
        double[] expected = {1.0, -2.0, 0.001, 3.0};
        GradientCheck.assertClose("rounded", new float[]{1f, -2f, 0.001f, 3f}, expected, 1e-5);
        // 2e-5 relative on the largest element is more than 1e-5·(|b| + max|b|) allows
        assertThrows(AssertionFailedError.class, () ->
                GradientCheck.assertClose("off", new double[]{1.0, -2.0, 0.001, 3.0 * (1 + 2.1e-5)}, expected, 1e-5));
        // a small element may be off by at most rtol·(its size + max): 1e-5·3.001
        GradientCheck.assertClose("small ok", new double[]{1.0, -2.0, 0.001 + 3e-5, 3.0}, expected, 1e-5);
        assertThrows(AssertionFailedError.class, () ->
                GradientCheck.assertClose("small off", new double[]{1.0, -2.0, 0.001 + 4e-5, 3.0}, expected, 1e-5));
        assertThrows(AssertionFailedError.class, () ->
                GradientCheck.assertClose("nan", new double[]{1.0, Double.NaN, 0.001, 3.0}, expected, 1e-5));
        assertThrows(AssertionFailedError.class, () ->
                GradientCheck.assertClose("length", new double[]{1.0}, expected, 1e-5));
    }

    @Test
    void finiteDifferencesOfTheReferenceCatchAWrongGradient() {
        Random rnd = new Random(1);
        int n = 5, c = 8;
        double[] x = GradientCheck.toDouble(GradientCheck.gaussian(rnd, n * c, 1));
        double[] w = GradientCheck.toDouble(GradientCheck.gaussian(rnd, n * c, 1));
        double[] gx = new double[n * c];
        Reference64.geluBackward(gx, x, w, n * c);
        java.util.function.DoubleSupplier f = () -> {
            double[] o = new double[n * c];
            Reference64.geluForward(o, x, n * c);
            return GradientCheck.dot(w, o);
        };
        int[] coords = GradientCheck.sample(rnd, n * c, 10);
        GradientCheck.assertReferenceGradient("gelu", x, gx, coords, f);
        gx[coords[3]] *= 1.0001;
        assertThrows(AssertionFailedError.class, () -> GradientCheck.assertReferenceGradient("gelu", x, gx, coords, f));
    }

    @Test
    void sampleIncludesTheEndsAndIsDistinct() {
        int[] s = GradientCheck.sample(new Random(2), 50, 10);
        assertEquals(10, s.length);
        assertEquals(0, s[0]);
        assertEquals(49, s[1]);
        assertEquals(10, java.util.Arrays.stream(s).distinct().count());
        assertEquals(3, GradientCheck.sample(new Random(2), 3, 10).length);
    }

    @Test
    void bf16RoundsToNearestEven() {
        float[] in = {1f, 1f + 0x1p-8f, 1f + 3 * 0x1p-8f, -2.5f, 1f + 0x1p-8f + 0x1p-20f, 65504f};
        float[] out = BackendConformanceTest.Host.round(in, DType.BF16);
        assertArrayEquals(new float[]{1f, 1f, 1f + 4 * 0x1p-8f, -2.5f, 1f + 2 * 0x1p-8f, 65536f}, out);
        assertEquals(0x3f80, BackendConformanceTest.Host.toBf16(1f) & 0xffff);
        assertEquals(Float.NaN, BackendConformanceTest.Host.round(new float[]{Float.NaN}, DType.BF16)[0]);
    }
}
