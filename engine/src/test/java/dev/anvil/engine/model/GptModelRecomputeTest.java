package dev.anvil.engine.model;

import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Activation recomputation changes memory and time, never results: training with
 * {@code --recompute attention} or {@code block} gives the per-step losses, and the weights, of
 * training without it, bit for bit, with gradient accumulation over micro-batches and in fp32 and
 * (emulated) bf16. Also: the lazy zeroing of gradients (the first backward pass overwrites them)
 * matches zeroing them for real.
 */
class GptModelRecomputeTest {

    private static final GptConfig TINY = GptConfig.preset("tiny");
    private static final int B = 2, T = 24, ACCUM = 2, STEPS = 3;

    /** Per-step losses and the final weights of a short run. */
    private record Run(float[] losses, float[] weights) {
    }

    private static Run train(Recompute recompute, DType dtype) {
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, TINY, dtype);
             AdamW adamw = new AdamW(backend, model.layout(), new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f))) {
            model.initialize(5);
            model.recompute(recompute);
            Random data = new Random(11);
            float[] losses = new float[STEPS];
            for (int step = 0; step < STEPS; step++) {
                model.zeroGradients();
                for (int k = 0; k < ACCUM; k++) {
                    int[] tokens = data.ints(B * T + 1, 0, TINY.vocabSize()).toArray();
                    losses[step] += model.forward(Arrays.copyOf(tokens, B * T), Arrays.copyOfRange(tokens, 1, B * T + 1),
                            B, T, 1f / ACCUM);
                    model.backward();
                }
                float norm = adamw.gradientNorm(model.gradients());
                adamw.step(model.parameters(), model.masterWeights(), model.gradients(), 1e-3f, adamw.clipScale(norm));
            }
            return new Run(losses, model.readParameters());
        }
    }

    @Test
    void recomputingGivesTheSameLossesAndWeightsBitForBit() {
        for (DType dtype : new DType[] {DType.FP32, DType.BF16}) {
            Run kept = train(Recompute.NONE, dtype);
            for (Recompute mode : new Recompute[] {Recompute.ATTENTION, Recompute.BLOCK}) {
                Run run = train(mode, dtype);
                assertArrayEquals(kept.losses(), run.losses(), "losses with --recompute " + mode + ", " + dtype);
                assertArrayEquals(kept.weights(), run.weights(), "weights with --recompute " + mode + ", " + dtype);
            }
        }
    }

    @Test
    void lazilyZeroedGradientsEqualZeroedOnes() {
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, TINY)) {
            model.initialize(3);
            int[] tokens = new Random(4).ints(B * T + 1, 0, TINY.vocabSize()).toArray();
            int[] in = Arrays.copyOf(tokens, B * T), out = Arrays.copyOfRange(tokens, 1, B * T + 1);
            model.zeroGradients();
            model.forward(in, out, B, T);
            model.backward();
            float[] once = model.readGradients();
            // Garbage in the buffer must not leak into an overwriting backward pass.
            float[] garbage = new float[once.length];
            Arrays.fill(garbage, 1e3f);
            backend.upload(model.gradients(), java.lang.foreign.MemorySegment.ofArray(garbage));
            model.zeroGradients();
            model.forward(in, out, B, T);
            model.backward();
            assertArrayEquals(once, model.readGradients(), "a backward pass after zeroGradients() overwrites");
            model.zeroGradients();
            float[] zeros = model.readGradients();
            assertEquals(0f, (float) Arrays.stream(toDouble(zeros)).map(Math::abs).sum(), "zeroGradients() then read");
        }
    }

    private static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }
}
