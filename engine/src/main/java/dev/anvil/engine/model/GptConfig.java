package dev.anvil.engine.model;

import java.util.List;
import java.util.Locale;

/**
 * The shape of a GPT-2 style model.
 *
 * @param maxSeqLen        longest sequence (rows of the position embedding), {@code T}
 * @param vocabSize        real vocabulary size, {@code V}
 * @param paddedVocabSize  rows of the token embedding, {@code V} rounded up to a multiple of 128 so
 *                         the LM-head matmul has friendly shapes; padded rows never win probability
 * @param numLayers        transformer blocks, {@code L}
 * @param numHeads         attention heads, {@code nh}
 * @param channels         embedding width, {@code C}
 */
public record GptConfig(int maxSeqLen, int vocabSize, int paddedVocabSize, int numLayers, int numHeads,
                        int channels) {

    /** GPT-2's BPE vocabulary (r50k_base). */
    public static final int GPT2_VOCAB = 50257;

    public GptConfig {
        requirePositive("maxSeqLen", maxSeqLen);
        requirePositive("vocabSize", vocabSize);
        requirePositive("numLayers", numLayers);
        requirePositive("numHeads", numHeads);
        requirePositive("channels", channels);
        if (paddedVocabSize < vocabSize) {
            throw new IllegalArgumentException("paddedVocabSize " + paddedVocabSize + " is below vocabSize " + vocabSize);
        }
        if (channels % numHeads != 0) {
            throw new IllegalArgumentException("channels " + channels + " must be divisible by numHeads " + numHeads);
        }
    }

    private static void requirePositive(String name, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + " must be positive, got " + value);
        }
    }

    /** A model of the given size, its vocabulary padded to a multiple of 128. */
    public static GptConfig of(int numLayers, int channels, int numHeads, int maxSeqLen, int vocabSize) {
        return new GptConfig(maxSeqLen, vocabSize, padVocab(vocabSize), numLayers, numHeads, channels);
    }

    /** Rounds a vocabulary size up to a multiple of 128. */
    public static int padVocab(int vocabSize) {
        return (vocabSize + 127) / 128 * 128;
    }

    /** Names accepted by {@link #preset}. */
    public static final List<String> PRESETS =
            List.of("tiny", "mini", "speed-bar", "gpt2-124m", "gpt2-350m", "gpt-1.3b");

    /**
     * A named preset: {@code tiny} (L=2, C=64, nh=4, T=64, V=512: for tests), {@code mini} (L=4, C=128,
     * nh=4, T=64, V=512: a byte-level model that learns words from the embedded corpus in about a minute
     * on a laptop's CPU), {@code speed-bar} (L=6, C=384, nh=6, T=256, V=50304: the CPU speed bar of
     * {@code TrainStepBenchmark}), {@code gpt2-124m}, {@code gpt2-350m} or {@code gpt-1.3b} (L=24, C=2048,
     * nh=16, T=2048).
     */
    public static GptConfig preset(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "tiny" -> of(2, 64, 4, 64, 512);
            case "mini" -> of(4, 128, 4, 64, 512);
            case "speed-bar" -> of(6, 384, 6, 256, 50304);
            case "gpt2-124m", "gpt2", "124m" -> of(12, 768, 12, 1024, GPT2_VOCAB);
            case "gpt2-350m", "gpt2-medium", "350m" -> of(24, 1024, 16, 1024, GPT2_VOCAB);
            case "gpt-1.3b", "gpt2-1.3b", "1.3b" -> of(24, 2048, 16, 2048, GPT2_VOCAB);
            default -> throw new IllegalArgumentException("unknown preset '" + name + "'; known presets: "
                    + String.join(", ", PRESETS));
        };
    }

    /** Channels per head. */
    public int headSize() {
        return channels / numHeads;
    }

    /** Number of parameters, padded vocabulary rows included. */
    public long parameterCount() {
        return ParameterLayout.of(this).totalSize();
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "GptConfig[L=%d, C=%d, nh=%d, T=%d, V=%d (padded %d)]",
                numLayers, channels, numHeads, maxSeqLen, vocabSize, paddedVocabSize);
    }
}
