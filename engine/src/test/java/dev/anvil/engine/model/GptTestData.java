package dev.anvil.engine.model;

import java.util.SplittableRandom;

/** Seeded parameters and token batches shared by the model tests. */
final class GptTestData {

    private GptTestData() {
    }

    /**
     * GPT-2's initialization: matmul weights and embeddings N(0, 0.02), residual projections
     * ({@code c_proj}) N(0, 0.02/sqrt(2L)), LayerNorm weights 1, biases 0.
     */
    static double[] gpt2Init(GptConfig config, long seed) {
        ParameterLayout layout = ParameterLayout.of(config);
        SplittableRandom random = new SplittableRandom(seed);
        double[] p = new double[Math.toIntExact(layout.totalSize())];
        double projStd = 0.02 / Math.sqrt(2.0 * config.numLayers());
        for (ParameterLayout.Tensor t : layout.tensors()) {
            String name = t.name();
            if (isLayerNormWeight(name)) {
                fill(p, t, 1, 0, random);
            } else if (name.endsWith(".bias")) {
                fill(p, t, 0, 0, random);
            } else {
                fill(p, t, 0, name.endsWith("c_proj.weight") ? projStd : 0.02, random);
            }
        }
        return p;
    }

    /**
     * Parameters that put every op in its non-trivial regime, unlike GPT-2's init where attention is
     * near uniform, GELU near linear and biases zero: weights N(0, 1/fan_in) so pre-activations and
     * attention scores are O(1), embeddings N(0, 1/C) so logits are O(1), LayerNorm weights
     * 1 ± 0.2, every bias N(0, 0.1).
     */
    static double[] stressed(GptConfig config, long seed) {
        ParameterLayout layout = ParameterLayout.of(config);
        SplittableRandom random = new SplittableRandom(seed);
        double[] p = new double[Math.toIntExact(layout.totalSize())];
        for (ParameterLayout.Tensor t : layout.tensors()) {
            String name = t.name();
            if (isLayerNormWeight(name)) {
                fill(p, t, 1, 0.2, random);
            } else if (name.endsWith(".bias")) {
                fill(p, t, 0, 0.1, random);
            } else {
                // embeddings are [rows, C] and weights [out, in]: the last dimension is the fan-in
                fill(p, t, 0, 1 / Math.sqrt(t.shape()[t.shape().length - 1]), random);
            }
        }
        return p;
    }

    private static void fill(double[] p, ParameterLayout.Tensor t, double mean, double std, SplittableRandom random) {
        int start = Math.toIntExact(t.offset());
        for (int i = 0; i < t.size(); i++) {
            p[start + i] = mean + std * gaussian(random);
        }
    }

    /** Box–Muller, so the stream is fixed by the seed alone, whatever the JDK's own gaussian does. */
    private static double gaussian(SplittableRandom random) {
        double u = 1.0 - random.nextDouble();
        double v = random.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    /** {@code n} tokens drawn uniformly from {@code [0, vocabSize)}. */
    static int[] tokens(int n, int vocabSize, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = random.nextInt(vocabSize);
        }
        return out;
    }

    /** Rounds to fp32, the precision the model holds parameters in. */
    static float[] toFloat(double[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (float) values[i];
        }
        return out;
    }

    /** Whether the tensor is a LayerNorm weight (initialized to 1). */
    static boolean isLayerNormWeight(String name) {
        return name.endsWith("ln_1.weight") || name.endsWith("ln_2.weight") || name.endsWith("ln_f.weight");
    }
}
