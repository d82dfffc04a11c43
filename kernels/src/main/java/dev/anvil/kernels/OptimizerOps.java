package dev.anvil.kernels;

/** The ops of an optimizer step: gradient norm and the AdamW update. */
public interface OptimizerOps {

    /**
     * Writes {@code Σ x²} into element 0 of the FP32 buffer {@code out}, summed in at least fp32
     * with a pairwise or wider accumulator so that large buffers do not lose precision.
     */
    void sumOfSquares(Buffer out, Buffer x);

    /**
     * One AdamW update as {@code torch.optim.AdamW} makes it, over every element of
     * {@code params}:
     * <pre>
     *   g = grads · gradScale
     *   m = β1·m + (1-β1)·g;   v = β2·v + (1-β2)·g²
     *   p = p - lr·wd·p
     *   p = p - lr · (m / (1-β1^step)) / (sqrt(v / (1-β2^step)) + eps)
     * </pre>
     *
     * @param params the parameters updated in place
     * @param master fp32 master weights when {@code params} is BF16 (the update is made on them and
     *               rounded into {@code params}); {@code null} when {@code params} is FP32
     * @param grads  gradients, same length as {@code params}
     * @param m      first moments, FP32
     * @param v      second moments, FP32
     */
    void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step);
}
