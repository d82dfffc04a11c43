package dev.anvil.kernels.cpu;

import dev.anvil.kernels.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Both paths of {@link CpuCrossEntropy} against float64 on GPT-2-sized, padded rows. */
class CpuCrossEntropyTest {

    @ParameterizedTest(name = "simd={0}")
    @ValueSource(booleans = {true, false})
    void lossAndGradientMatchFloat64OverAFullVocabularyRow(boolean simd) {
        assumeTrue(!simd || Simd.available(), "jdk.incubator.vector is not available");
        int n = 3, v = 50257, vp = 50304;
        float gradScale = 1f / n;
        Random rnd = new Random(7);
        CpuBuffer logits = CpuBuffer.allocate(DType.FP32, n * vp + 5).slice(5, n * vp);
        CpuBuffer targets = CpuBuffer.allocate(DType.INT32, n);
        CpuBuffer losses = CpuBuffer.allocate(DType.FP32, n);
        for (int i = 0; i < n * vp; i++) {
            logits.f[logits.offset + i] = (float) (rnd.nextGaussian() * 4);
        }
        for (int r = 0; r < n; r++) {
            targets.i[r] = rnd.nextInt(v);
        }
        float[] z = logits.f.clone();

        try (WorkerPool pool = new WorkerPool(2)) {
            new CpuCrossEntropy(pool, simd).forwardBackward(losses, logits, targets, n, v, vp, gradScale);
        }

        for (int r = 0; r < n; r++) {
            int zo = logits.offset + r * vp;
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int i = 0; i < v; i++) {
                max = Math.max(max, z[zo + i]);
            }
            for (int i = 0; i < v; i++) {
                sum += Math.exp(z[zo + i] - max);
            }
            double loss = max + Math.log(sum) - z[zo + targets.i[r]];
            assertEquals(loss, losses.f[r], 1e-5 * Math.abs(loss), "loss of row " + r);
            for (int i = 0; i < vp; i++) {
                double p = i < v ? Math.exp(z[zo + i] - max) / sum : 0;
                double want = (p - (i == targets.i[r] ? 1 : 0)) * gradScale;
                assertEquals(want, logits.f[zo + i], 1e-5 * p * gradScale + Math.ulp((float) want),
                        "gradient at row " + r + ", column " + i);
            }
        }
    }
}
