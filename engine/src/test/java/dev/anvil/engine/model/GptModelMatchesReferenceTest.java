package dev.anvil.engine.model;

import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Checks {@link GptModel} on the CPU backend against the float64 {@link ReferenceGpt64}, against
 * finite differences of its own loss, and against GPT-2's initialization.
 */
class GptModelMatchesReferenceTest {

    private static final GptConfig TINY = GptConfig.preset("tiny");
    /** The tiny model with V = 500, padded to 512 rows: the padded rows must stay out of the head. */
    private static final GptConfig TINY_PADDED = GptConfig.of(2, 64, 4, 64, 500);
    private static final int B = 2;
    private static final long INIT_SEED = 1234;

    /** How the parameters are set before the check. */
    enum Weights {
        /** {@code initialize(1234)}: GPT-2's init, where attention is near uniform and biases are 0. */
        GPT2_INIT,
        /** {@link GptTestData#stressed}: O(1) pre-activations, peaked attention, non-zero biases. */
        STRESSED
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of(TINY, 64, Weights.GPT2_INIT),
                Arguments.of(TINY, 17, Weights.GPT2_INIT),
                Arguments.of(TINY, 64, Weights.STRESSED),
                Arguments.of(TINY_PADDED, 17, Weights.STRESSED));
    }

    /**
     * The reference runs on the model's own fp32 parameters, widened exactly, so every difference
     * is the model's fp32 rounding. A gradient element is a sum of O(B·T·C) products, each carried
     * through ~5 ops per block; with u = 2^-24 ≈ 6e-8 the rounding error of such sums grows like
     * √n·u (n·u at worst) of the sum of |terms|, and the terms are of the size of the tensor's
     * largest gradient, so the expected error is ~1e-6 of the tensor's max|ref|. Hence the bound
     * |g − ref| ≤ 1e-4·max|ref of that tensor| + 1e-6: ~100× margin for rounding, while a wrong
     * LayerNorm eps, attention scale, GELU constant, a dropped bias or any indexing slip moves
     * gradients by 1e-3 to O(1) of the tensor's max and fails. The 1e-6 floor covers tensors with
     * tiny gradients at init (q and k weights under near-uniform attention), where cancellation in
     * the softmax backward leaves an absolute, not relative, rounding error.
     */
    private static final double GRAD_REL = 1e-4;
    private static final double GRAD_ABS = 1e-6;
    /** fp32 loss over ≤ 128 positions: each position's log-sum-exp is good to ~1e-7 relative. */
    private static final double LOSS_REL = 1e-5;

    @ParameterizedTest(name = "{0}, T={1}, {2}")
    @MethodSource("cases")
    void tinyModelLossAndGradientsEqualFloat64Reference(GptConfig config, int t, Weights weights) {
        int[] inputs = GptTestData.tokens(B * t, config.vocabSize(), 100 + t);
        int[] targets = GptTestData.tokens(B * t, config.vocabSize(), 200 + t);
        withModel(config, weights, model -> {
            model.zeroGradients();
            float loss = model.forward(inputs, targets, B, t);
            model.backward();
            float[] params = model.readParameters();
            float[] grads = model.readGradients();

            ReferenceGpt64.Result ref = new ReferenceGpt64(config)
                    .lossAndGradient(ReferenceGpt64.toDouble(params), inputs, targets, B, t);
            assertEquals(ref.loss(), loss, LOSS_REL * ref.loss(), "mean loss");
            assertGradientsClose(config, ref.gradient(), grads, GRAD_REL, GRAD_ABS, "model vs float64 reference");
            assertPaddedRowsHaveNoGradient(config, grads);
        });
    }

    /**
     * Finite differences of the model's own fp32 loss, so the check needs nothing but the model.
     * fp32 makes small steps useless: the loss (~6) is only good to a few ulps, ~1e-6, so with
     * step h the numeric derivative carries an error of about 8·ulp(loss)/h. Hence a large step,
     * h = 1e-2, on stressed weights whose gradients are large (≥ 1e-2 at the coordinates picked),
     * giving a noise of ~4e-4; central differences keep the truncation error at ~h²·f'''/6, under
     * 1% of the gradient at these weights' O(0.1) scale. Compared with 5e-2 relative plus that
     * noise allowance: loose, but independent of the reference, and any gradient that is wrong by a
     * factor, a sign or a missing term fails it.
     */
    @Test
    void tinyModelGradientsPassFiniteDifferenceCheck() {
        int t = 32;
        int[] inputs = GptTestData.tokens(B * t, TINY.vocabSize(), 31);
        int[] targets = GptTestData.tokens(B * t, TINY.vocabSize(), 32);
        double h = 1e-2;
        withModel(TINY, Weights.STRESSED, model -> {
            model.zeroGradients();
            float loss = model.forward(inputs, targets, B, t);
            model.backward();
            float[] grads = model.readGradients();
            float[] params = model.readParameters();
            double noise = 8 * Math.ulp(loss) / h;

            List<String> failures = new ArrayList<>();
            SplittableRandom random = new SplittableRandom(33);
            for (ParameterLayout.Tensor tensor : ParameterLayout.of(TINY).tensors()) {
                for (int k : coordinatesToCheck(tensor, grads, random)) {
                    float saved = params[k];
                    float up = saved + (float) h;
                    float down = saved - (float) h;
                    double plus = lossWith(model, params, k, up, inputs, targets, t);
                    double minus = lossWith(model, params, k, down, inputs, targets, t);
                    params[k] = saved;
                    // the step actually taken, after rounding the perturbed values to fp32
                    double fd = (plus - minus) / ((double) up - down);
                    if (Math.abs(fd - grads[k]) > 5e-2 * Math.abs(grads[k]) + noise) {
                        failures.add(tensor.name() + "[" + (k - tensor.offset()) + "]: backward " + grads[k]
                                + ", finite difference " + fd);
                    }
                }
            }
            model.writeParameters(params);
            assertTrue(failures.isEmpty(), "gradients off finite differences:\n" + String.join("\n", failures));
        });
    }

    /**
     * Per tensor, its four largest gradients (where a wrong backward shows most clearly above the fp32
     * noise) and four random coordinates with a gradient over 1e-2.
     */
    private static int[] coordinatesToCheck(ParameterLayout.Tensor tensor, float[] grads, SplittableRandom random) {
        int start = Math.toIntExact(tensor.offset());
        int[] byMagnitude = IntStream.range(start, start + Math.toIntExact(tensor.size())).boxed()
                .sorted((a, b) -> Float.compare(Math.abs(grads[b]), Math.abs(grads[a])))
                .mapToInt(Integer::intValue).toArray();
        assertTrue(Math.abs(grads[byMagnitude[3]]) > 1e-2,
                tensor.name() + "'s gradient is too small for an fp32 finite-difference check");
        int large = 0;
        while (large < byMagnitude.length && Math.abs(grads[byMagnitude[large]]) > 1e-2) {
            large++;
        }
        int[] picked = new int[8];
        System.arraycopy(byMagnitude, 0, picked, 0, 4);
        for (int i = 4; i < 8; i++) {
            picked[i] = byMagnitude[random.nextInt(large)];
        }
        return picked;
    }

    private static double lossWith(GptModel model, float[] params, int k, float value, int[] inputs, int[] targets, int t) {
        params[k] = value;
        model.writeParameters(params);
        return model.forward(inputs, targets, B, t);
    }

    @Test
    void initializationFollowsGpt2() {
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, TINY)) {
            model.initialize(INIT_SEED);
            float[] p = model.readParameters();
            double projStd = 0.02 / Math.sqrt(2.0 * TINY.numLayers());
            for (ParameterLayout.Tensor tensor : ParameterLayout.of(TINY).tensors()) {
                String name = tensor.name();
                float[] values = Arrays.copyOfRange(p, Math.toIntExact(tensor.offset()),
                        Math.toIntExact(tensor.offset() + tensor.size()));
                if (GptTestData.isLayerNormWeight(name)) {
                    assertAllEqual(1f, values, name);
                } else if (name.endsWith(".bias")) {
                    assertAllEqual(0f, values, name);
                } else {
                    assertNormal(name.endsWith("c_proj.weight") ? projStd : 0.02, values, name);
                }
            }

            model.initialize(INIT_SEED);
            assertArrayEquals(p, model.readParameters(), "same seed, same parameters");
            model.initialize(INIT_SEED + 1);
            assertFalse(Arrays.equals(p, model.readParameters()), "another seed, the same parameters");
        }
    }

    private static void assertAllEqual(float expected, float[] values, String name) {
        for (int i = 0; i < values.length; i++) {
            if (values[i] != expected) {
                fail(name + "[" + i + "] is " + values[i] + ", expected exactly " + expected);
            }
        }
    }

    /**
     * Zero mean, the expected std, and normal rather than, say, uniform: 68.3% of the values lie
     * within one std (a uniform distribution has 57.7%). The tolerances are over 4 sampling standard
     * errors for the smallest tensor (4096 values).
     */
    private static void assertNormal(double std, float[] values, String name) {
        double sum = 0;
        double sumSq = 0;
        int withinOneStd = 0;
        for (float v : values) {
            sum += v;
            sumSq += (double) v * v;
            if (Math.abs(v) < std) {
                withinOneStd++;
            }
        }
        int n = values.length;
        double mean = sum / n;
        double actualStd = Math.sqrt(sumSq / n - mean * mean);
        assertEquals(0, mean, 0.1 * std, name + " mean");
        assertEquals(std, actualStd, 0.05 * std, name + " std");
        assertEquals(0.683, (double) withinOneStd / n, 0.03, name + " share within one std");
    }

    @Test
    void gradientsAccumulateUntilZeroed() {
        int t = 17;
        int[] inputs = GptTestData.tokens(B * t, TINY.vocabSize(), 41);
        int[] targets = GptTestData.tokens(B * t, TINY.vocabSize(), 42);
        withModel(TINY, Weights.STRESSED, model -> {
            model.zeroGradients();
            model.forward(inputs, targets, B, t);
            model.backward();
            float[] once = model.readGradients();
            model.forward(inputs, targets, B, t);
            model.backward();
            float[] twice = model.readGradients();

            double[] doubled = new double[once.length];
            for (int i = 0; i < once.length; i++) {
                doubled[i] = 2.0 * once[i];
            }
            // The same fp32 numbers added twice: only the accumulation order can differ.
            assertGradientsClose(TINY, doubled, twice, 1e-6, 1e-9, "second backward without zeroing");

            model.zeroGradients();
            model.forward(inputs, targets, B, t);
            model.backward();
            assertArrayEquals(once, model.readGradients(), "backward after zeroGradients");
        });
    }

    // ---- helpers ----

    private static void withModel(GptConfig config, Weights weights, Consumer<GptModel> check) {
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, config)) {
            model.initialize(INIT_SEED);
            if (weights == Weights.STRESSED) {
                model.writeParameters(GptTestData.toFloat(GptTestData.stressed(config, INIT_SEED)));
            }
            check.accept(model);
        }
    }

    /**
     * Every element: {@code |actual − expected| ≤ rel·max|expected of its tensor| + abs}. Reports the
     * worst element of each failing tensor.
     */
    private static void assertGradientsClose(GptConfig config, double[] expected, float[] actual, double rel,
                                             double abs, String what) {
        assertEquals(expected.length, actual.length, "gradient length");
        List<String> failures = new ArrayList<>();
        for (ParameterLayout.Tensor tensor : ParameterLayout.of(config).tensors()) {
            int start = Math.toIntExact(tensor.offset());
            int end = Math.toIntExact(tensor.offset() + tensor.size());
            double maxAbs = 0;
            for (int i = start; i < end; i++) {
                maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
            }
            double bound = rel * maxAbs + abs;
            int worst = start;
            double err = -1;
            for (int i = start; i < end && !Double.isNaN(err); i++) {
                double e = Math.abs(actual[i] - expected[i]);
                if (e > err || Double.isNaN(e)) {
                    err = e;
                    worst = i;
                }
            }
            if (!(err <= bound)) {
                failures.add(String.format("%s[%d]: %s vs %s (error %.3g > bound %.3g, max|expected| %.3g)",
                        tensor.name(), worst - start, actual[worst], expected[worst], err, bound, maxAbs));
            }
        }
        assertTrue(failures.isEmpty(), what + ":\n" + String.join("\n", failures));
    }

    /** Padded rows of wte are not vocabulary: nothing may flow into them. */
    private static void assertPaddedRowsHaveNoGradient(GptConfig config, float[] grads) {
        int wte = Math.toIntExact(ParameterLayout.of(config).tensor("transformer.wte.weight").offset());
        for (int i = wte + config.vocabSize() * config.channels(); i < wte + config.paddedVocabSize() * config.channels(); i++) {
            if (grads[i] != 0f) {
                fail("padded wte element " + (i - wte) + " has gradient " + grads[i]);
            }
        }
    }
}
