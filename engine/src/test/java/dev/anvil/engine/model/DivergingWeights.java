package dev.anvil.engine.model;

/** Weights that make training diverge in ways the trainer must catch. */
public final class DivergingWeights {

    private DivergingWeights() {
    }

    /**
     * A copy of {@code params} whose forward pass gives the same finite loss but whose gradient norm overflows:
     * channel 0 of the final LayerNorm's output is 1e30 at every position (its bias), and no vocabulary row reads
     * that channel (the tied embedding's column 0 is zero), so the logits do not change. The embedding's gradient,
     * the sum of the logits' gradients times that output, is then about 1e29, and its square overflows fp32.
     */
    public static float[] finiteLossInfiniteGradientNorm(GptConfig config, float[] params) {
        ParameterLayout layout = ParameterLayout.of(config);
        float[] poisoned = params.clone();
        int wte = (int) layout.tensor("transformer.wte.weight").offset();
        for (int v = 0; v < config.paddedVocabSize(); v++) {
            poisoned[wte + v * config.channels()] = 0f;
        }
        int gain = (int) layout.tensor("transformer.ln_f.weight").offset();
        int bias = (int) layout.tensor("transformer.ln_f.bias").offset();
        poisoned[gain] = 0f;
        poisoned[bias] = 1e30f;
        return poisoned;
    }
}
