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

    /**
     * {@code clip_grad_norm_}'s factor, computed where the gradients are, so that no step has to wait
     * for the host: from {@code sumOfSquares[0]} (Σg², as {@link #sumOfSquares} writes it), writes
     * {@code out[0] = norm = sqrt(Σg²)} and {@code out[1] = maxNorm / (norm + 1e-6)} when that is
     * below 1, else 1 (always 1 when {@code maxNorm <= 0}), in fp32; NaN when the norm is not
     * finite, so that {@link #adamw(Buffer, Buffer, Buffer, Buffer, Buffer, AdamWStep, Buffer)}
     * skips the update.
     *
     * @param out FP32, 2 elements
     */
    void gradientClip(Buffer out, Buffer sumOfSquares, float maxNorm);

    /**
     * {@link #adamw(Buffer, Buffer, Buffer, Buffer, Buffer, AdamWStep)} with the gradient scale read
     * from {@code gradScale[0]} (FP32, e.g. {@link #gradientClip}'s {@code out[1]}) instead of
     * {@code step.gradScale()}. A non-finite scale leaves parameters, master weights and moments as
     * they were.
     */
    void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step, Buffer gradScale);
}
