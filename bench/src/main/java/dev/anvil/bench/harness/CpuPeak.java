package dev.anvil.bench.harness;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.util.Locale;
import java.util.Random;

/**
 * Measures the CPU's practical fp32 peak as the best rate of the backend's own matmul at a GPT-2
 * small shape. A CPU has no datasheet figure that its SIMD width, clocks and core count agree on,
 * so CPU MFU is against this measurement, and labelled so.
 */
public final class CpuPeak {

    /** Rows, input and output channels: GPT-2 small's QKV projection of 512 positions. */
    private static final int N = 512, C = 768, OC = 3 * 768;
    private static final double SECONDS = 0.5;
    private static final int MIN_RUNS = 3;

    private CpuPeak() {
    }

    /** Runs matmuls for about half a second and returns the best rate seen. */
    public static Peak measure(Backend backend) {
        Random random = new Random(7);
        try (Buffer inp = RandomBuffers.uniform(backend, random, (long) N * C); Buffer weight = RandomBuffers.uniform(backend, random, (long) OC * C);
             Buffer out = backend.allocate(DType.FP32, (long) N * OC)) {
            double flops = 2.0 * N * C * OC;
            long best = Long.MAX_VALUE;
            long deadline = System.nanoTime() + (long) (SECONDS * 1e9);
            for (int run = 0; run < MIN_RUNS || System.nanoTime() < deadline; run++) {
                long start = System.nanoTime();
                backend.matmulForward(out, inp, weight, null, N, C, OC);
                backend.synchronize();
                best = Math.min(best, System.nanoTime() - start);
            }
            double tflops = flops / best / 1e3;
            return new Peak(tflops, String.format(Locale.ROOT, "measured CPU matmul peak (%dx%dx%d fp32, best of %.1f s)",
                    N, C, OC, SECONDS));
        }
    }
}
