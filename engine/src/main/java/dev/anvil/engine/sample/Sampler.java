package dev.anvil.engine.sample;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: temperature scaling, optional top-k truncation, then a draw
 * from the softmax. Temperature 0 means greedy (the most likely token). Seeded, so a seed and a
 * prompt give the same text every time.
 */
public final class Sampler {

    private final float temperature;
    private final int topK;
    private final SplittableRandom random;
    private double[] probs = new double[0];
    private float[] sorted = new float[0];

    /**
     * @param temperature 0 for greedy, else divides the logits (lower is more conservative)
     * @param topK        keep only the {@code topK} most likely tokens; 0 keeps all
     */
    public Sampler(float temperature, int topK, long seed) {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("--temperature must be 0 (greedy) or positive, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("--top-k must be 0 (off) or positive, got " + topK);
        }
        this.temperature = temperature;
        this.topK = topK;
        this.random = new SplittableRandom(seed);
    }

    /** The next token given one position's {@code logits}. */
    public int next(float[] logits) {
        if (temperature == 0f) {
            return argmax(logits);
        }
        float cutoff = Float.NEGATIVE_INFINITY;
        if (topK > 0 && topK < logits.length) {
            if (sorted.length != logits.length) {
                sorted = new float[logits.length];
            }
            System.arraycopy(logits, 0, sorted, 0, logits.length);
            Arrays.sort(sorted);
            cutoff = sorted[logits.length - topK];
        }
        float max = logits[argmax(logits)];
        if (probs.length != logits.length) {
            probs = new double[logits.length];
        }
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            double p = logits[i] < cutoff ? 0 : Math.exp((logits[i] - max) / temperature);
            probs[i] = p;
            sum += p;
        }
        double u = random.nextDouble() * sum;
        double acc = 0;
        int last = 0;
        for (int i = 0; i < logits.length; i++) {
            if (probs[i] > 0) {
                acc += probs[i];
                last = i;
                if (u < acc) {
                    return i;
                }
            }
        }
        return last; // u landed on the rounding error at the very end
    }

    private static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
}
