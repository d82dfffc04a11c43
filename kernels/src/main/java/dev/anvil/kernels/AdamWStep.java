package dev.anvil.kernels;

/**
 * The scalars of one AdamW update.
 *
 * @param lr          learning rate for this step
 * @param beta1       first-moment decay
 * @param beta2       second-moment decay
 * @param eps         added to the denominator
 * @param weightDecay decoupled weight decay (0 for biases and LayerNorm parameters)
 * @param step        1-based step count, for bias correction
 * @param gradScale   multiplies every gradient first (gradient clipping folds in here)
 */
public record AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step,
                        float gradScale) {

    public AdamWStep {
        if (step < 1) {
            throw new IllegalArgumentException("AdamW step counts from 1, got " + step);
        }
    }

    /** The same scalars with a different gradient scale. */
    public AdamWStep withGradScale(float scale) {
        return new AdamWStep(lr, beta1, beta2, eps, weightDecay, step, scale);
    }

    /** The same scalars with a different weight decay. */
    public AdamWStep withWeightDecay(float wd) {
        return new AdamWStep(lr, beta1, beta2, eps, wd, step, gradScale);
    }
}
