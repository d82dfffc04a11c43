package dev.anvil.bench.harness;

import dev.anvil.engine.model.GptConfig;

/**
 * Training FLOPs of a GPT-2 model and model FLOPs utilisation (MFU), counted as llm.c's
 * {@code gpt2_estimate_mfu} does (after the PaLM paper, appendix B):
 * <pre>FLOPs per token = 6·N + 6·L·C·T</pre>
 * {@code 6·N}: every weight is used in one multiply-add (2 FLOPs) per token forward and two
 * backward. {@code 6·L·C·T}: the attention scores and weighted sum, {@code 12·L·C·T} for full
 * attention, halved because the mask is causal. {@code T} is the benchmarked sequence length.
 *
 * <p>{@code N} is {@link GptConfig#parameterCount()}: <em>all</em> parameters, as llm.c counts.
 * That includes the token embedding, rightly (it is tied to the LM head, whose matmul really runs
 * over the padded vocabulary), and the position embedding, which is only a lookup: it overstates
 * the FLOPs by {@code 6·T·C} per token, 0.6% for GPT-2 124M. nanoGPT leaves {@code wpe} out.
 */
public final class Flops {

    private Flops() {
    }

    /** FLOPs per trained token (forward and backward) of {@code model} at sequence length {@code seqLen}. */
    public static long perToken(GptConfig model, int seqLen) {
        return perToken(model.parameterCount(), model.numLayers(), model.channels(), seqLen);
    }

    /** {@code 6·parameters + 6·layers·channels·seqLen}. */
    public static long perToken(long parameters, int layers, int channels, int seqLen) {
        return 6 * parameters + 6L * layers * channels * seqLen;
    }

    /**
     * The fraction of the peak that training at {@code tokensPerS} achieves.
     *
     * @param peakTflopsPerDevice dense peak of one device, in TFLOPS (1e12 FLOP/s)
     * @param devices             devices the tokens/s figure is summed over
     */
    public static double mfu(long flopsPerToken, double tokensPerS, double peakTflopsPerDevice, int devices) {
        if (peakTflopsPerDevice <= 0 || devices <= 0) {
            throw new IllegalArgumentException("peak TFLOPS and devices must be positive, got " + peakTflopsPerDevice
                    + " and " + devices);
        }
        return flopsPerToken * tokensPerS / (peakTflopsPerDevice * 1e12 * devices);
    }
}
