package dev.anvil.engine.optim;

/**
 * AdamW hyperparameters, with PyTorch's defaults for betas and eps.
 *
 * @param beta1       first-moment decay
 * @param beta2       second-moment decay
 * @param eps         added to the denominator
 * @param weightDecay decoupled weight decay for 2-D tensors (matmul weights and embeddings)
 * @param gradClip    clip the global gradient L2 norm to this; 0 turns clipping off
 */
public record AdamWConfig(float beta1, float beta2, float eps, float weightDecay, float gradClip) {

    /** {@code torch.optim.AdamW}'s defaults (β 0.9/0.999, eps 1e-8, weight decay 0.01), no clipping. */
    public static final AdamWConfig PYTORCH_DEFAULTS = new AdamWConfig(0.9f, 0.999f, 1e-8f, 0.01f, 0f);

    public AdamWConfig {
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("betas must lie in [0, 1), got " + beta1 + ", " + beta2);
        }
        if (!(eps > 0)) {
            throw new IllegalArgumentException("eps must be positive, got " + eps);
        }
        if (!(weightDecay >= 0)) {
            throw new IllegalArgumentException("weight decay must be non-negative, got " + weightDecay);
        }
        if (!(gradClip >= 0)) {
            throw new IllegalArgumentException("gradient clip must be non-negative (0 = off), got " + gradClip);
        }
    }
}
