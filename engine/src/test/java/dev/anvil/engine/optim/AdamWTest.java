package dev.anvil.engine.optim;

import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.ParameterLayout;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdamWTest {

    /** A model small enough to reason about: wte [128,4] and wpe [2,4] decay, LayerNorm and biases do not. */
    private static final ParameterLayout LAYOUT = ParameterLayout.of(GptConfig.of(1, 4, 1, 2, 3));
    private static final int DECAYED = (int) LAYOUT.tensor("transformer.wte.weight").offset();
    private static final int NOT_DECAYED = (int) LAYOUT.tensor("transformer.h.0.ln_1.bias").offset() + 1;

    private final CpuBackend backend = new CpuBackend(1);

    private Buffer upload(float[] host) {
        Buffer b = backend.allocate(DType.FP32, host.length);
        backend.upload(b, MemorySegment.ofArray(host));
        return b;
    }

    private float[] download(Buffer b) {
        float[] host = new float[(int) b.length()];
        backend.download(b, MemorySegment.ofArray(host));
        return host;
    }

    private float[] twoSteps(AdamWConfig config, float gradScaleFactor) {
        int n = (int) LAYOUT.totalSize();
        float[] p = new float[n];
        java.util.Arrays.fill(p, 1f);
        Buffer params = upload(p);
        try (AdamW adamw = new AdamW(backend, LAYOUT, config)) {
            float[] g = new float[n];
            java.util.Arrays.fill(g, 0.5f);
            Buffer grads = upload(g);
            adamw.step(params, grads, 0.1f, gradScaleFactor);
            java.util.Arrays.fill(g, 0.25f);
            backend.upload(grads, MemorySegment.ofArray(g));
            adamw.step(params, grads, 0.1f, gradScaleFactor);
            return download(params);
        }
    }

    @Test
    void twoStepsMatchHandComputedAdamWWithWeightDecay() {
        float[] p = twoSteps(new AdamWConfig(0.9f, 0.999f, 1e-8f, 0.1f, 0f), 1f);
        // Step 1: m̂ = g, v̂ = g², so p = 1·(1 - 0.1·0.1) - 0.1·0.5/0.5 = 0.89.
        // Step 2: m = 0.07, v = 3.1225e-4; m̂ = 0.07/0.19, v̂ = 3.1225e-4/0.001999;
        //         p = 0.89·0.99 - 0.1·m̂/sqrt(v̂) = 0.8811 - 0.0932177 = 0.7878823
        assertEquals(0.7878823, p[DECAYED], 2e-6);
        // No decay on LayerNorm and biases: p = 1 - 0.1 - 0.0932177 = 0.8067823
        assertEquals(0.8067823, p[NOT_DECAYED], 2e-6);
    }

    @Test
    void twoStepsMatchHandComputedAdamWWithoutWeightDecay() {
        float[] p = twoSteps(new AdamWConfig(0.9f, 0.999f, 1e-8f, 0f, 0f), 1f);
        assertEquals(0.8067823, p[DECAYED], 2e-6);
        assertEquals(0.8067823, p[NOT_DECAYED], 2e-6);
    }

    @Test
    void clippingScalesGradientsLikeClipGradNorm() {
        int n = (int) LAYOUT.totalSize();
        float[] g = new float[n];
        g[0] = 3f;
        g[n - 1] = 4f;
        try (AdamW clipped = new AdamW(backend, LAYOUT, new AdamWConfig(0.9f, 0.999f, 1e-8f, 0f, 1f));
             AdamW unclipped = new AdamW(backend, LAYOUT, new AdamWConfig(0.9f, 0.999f, 1e-8f, 0f, 0f))) {
            float norm = clipped.gradientNorm(upload(g));
            assertEquals(5f, norm, 1e-6f);
            assertEquals(1.0 / (5.0 + 1e-6), clipped.clipScale(norm), 1e-7);
            assertEquals(1f, clipped.clipScale(0.5f), "a norm under the limit is left alone");
            assertEquals(1f, unclipped.clipScale(norm), "clip 0 means off");
        }
        // Scaled gradients change Adam's update only through eps: with g·s instead of g, step 1 moves
        // p by lr·g·s/(|g·s| + eps). Take a gradient small enough that eps matters.
        float[] p = new float[n];
        float[] small = new float[n];
        small[0] = 1e-8f;
        Buffer params = upload(p);
        try (AdamW adamw = new AdamW(backend, LAYOUT, new AdamWConfig(0.9f, 0.999f, 1e-8f, 0f, 0f))) {
            adamw.step(params, upload(small), 1f, 0.5f);
        }
        assertEquals(-(0.5e-8 / (0.5e-8 + 1e-8)), download(params)[0], 1e-6);
    }

    @Test
    void stepClippedIsGradientNormClipScaleAndStepBitForBit() {
        int n = (int) LAYOUT.totalSize();
        java.util.Random rnd = new java.util.Random(5);
        float[] p = new float[n], g = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = (float) rnd.nextGaussian();
            g[i] = (float) rnd.nextGaussian() * 3;  // norm well above the clip of 1
        }
        AdamWConfig config = new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f);
        Buffer hostParams = upload(p), deviceParams = upload(p), grads = upload(g);
        try (AdamW onHost = new AdamW(backend, LAYOUT, config); AdamW onDevice = new AdamW(backend, LAYOUT, config)) {
            for (int step = 0; step < 2; step++) {
                float norm = onHost.gradientNorm(grads);
                onHost.step(hostParams, grads, 1e-2f, onHost.clipScale(norm));
                assertEquals(norm, onDevice.stepClipped(deviceParams, null, grads, 1e-2f).join());
                assertArrayEquals(download(hostParams), download(deviceParams));
            }
            assertEquals(2, onDevice.stepCount());
            float[] bad = g.clone();
            bad[3] = Float.NaN;
            backend.upload(grads, MemorySegment.ofArray(bad));
            float[] before = download(deviceParams);
            assertTrue(Float.isNaN(onDevice.stepClipped(deviceParams, null, grads, 1e-2f).join()));
            assertArrayEquals(before, download(deviceParams), "a NaN gradient norm skips the update");
            assertEquals(2, onDevice.stepCount(), "a skipped update is not counted");
        }
    }
}
