package dev.anvil.kernels.cpu;

import dev.anvil.kernels.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Both paths of {@link CpuGelu} against the tanh formula in float64. */
class CpuGeluTest {

    private static final double C = Math.sqrt(2 / Math.PI);

    @ParameterizedTest(name = "simd={0}")
    @ValueSource(booleans = {true, false})
    void forwardWritesAndBackwardAccumulatesTheTanhApproximation(boolean simd) {
        assumeTrue(!simd || Simd.available(), "jdk.incubator.vector is not available");
        int n = 40_003;
        Random rnd = new Random(3);
        CpuBuffer inp = random(rnd, n), dout = random(rnd, n), dinp = random(rnd, n);
        CpuBuffer out = CpuBuffer.allocate(DType.FP32, n);
        float[] dinpBefore = dinp.f.clone();

        try (WorkerPool pool = new WorkerPool(2)) {
            CpuGelu gelu = new CpuGelu(pool, simd);
            gelu.forward(out, inp, n);
            gelu.backward(dinp, inp, dout, n);
        }

        for (int i = 0; i < n; i++) {
            double x = inp.f[inp.offset + i];
            double th = Math.tanh(C * (x + 0.044715 * x * x * x));
            double local = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * C * (1 + 3 * 0.044715 * x * x);
            double dy = dout.f[dout.offset + i];
            assertEquals(0.5 * x * (1 + th), out.f[i], 1e-6 * (1 + Math.abs(x)), "out[" + i + "]");
            assertEquals(dinpBefore[dinp.offset + i] + local * dy, dinp.f[dinp.offset + i], 1e-6 * (1 + Math.abs(dy)),
                    "dinp[" + i + "]");
        }
    }

    /** Values spanning GELU's curved region and both tails, in a slice at an odd offset. */
    private static CpuBuffer random(Random rnd, int n) {
        CpuBuffer b = CpuBuffer.allocate(DType.FP32, n + 3).slice(3, n);
        for (int i = 0; i < n; i++) {
            b.f[b.offset + i] = (float) (rnd.nextGaussian() * 3);
        }
        return b;
    }
}
