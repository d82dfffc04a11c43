package dev.anvil.kernels.cpu;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.DType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class CpuAdamWTest {

    private static float[][] threeSteps(boolean simd) {
        int n = 100_003; // not a whole number of vectors or chunks
        Random random = new Random(4);
        CpuBuffer p = CpuBuffer.allocate(DType.FP32, n), g = CpuBuffer.allocate(DType.FP32, n);
        CpuBuffer m = CpuBuffer.allocate(DType.FP32, n), v = CpuBuffer.allocate(DType.FP32, n);
        for (int i = 0; i < n; i++) {
            p.f[i] = random.nextFloat() - 0.5f;
        }
        try (WorkerPool pool = new WorkerPool(2)) {
            CpuAdamW adamw = new CpuAdamW(pool, simd);
            for (int step = 1; step <= 3; step++) {
                for (int i = 0; i < n; i++) {
                    g.f[i] = (float) random.nextGaussian() * (i % 7 == 0 ? 1e-9f : 1f);
                }
                adamw.update(p, g, m, v, new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f));
            }
        }
        return new float[][] {p.f, m.f, v.f};
    }

    @Test
    void vectorAndScalarUpdatesGiveTheSameBits() {
        float[][] vector = threeSteps(true);
        float[][] scalar = threeSteps(false);
        for (int k = 0; k < 3; k++) {
            assertArrayEquals(scalar[k], vector[k]);
        }
    }
}
