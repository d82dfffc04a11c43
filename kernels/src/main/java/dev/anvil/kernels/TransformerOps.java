package dev.anvil.kernels;

/**
 * The forward and backward ops of a GPT-2 transformer, as one backend computes them.
 *
 * <p>Conventions shared by every op, so that a GPU backend can queue them on a stream without a
 * host round trip:
 * <ul>
 *   <li>Tensors are row-major; {@code n} counts rows (positions, {@code n = B·T}), {@code c} is
 *       the channel count.
 *   <li>Forward ops overwrite their outputs.
 *   <li>Backward ops <em>accumulate</em> ({@code +=}) into every gradient they write, parameter and
 *       activation gradients alike, so gradient accumulation over micro-batches and the residual
 *       stream's sum of gradients need no extra op. The caller zeroes gradient buffers when it
 *       starts a fresh sum. The one exception is {@link #softmaxCrossEntropy}, which writes.
 *   <li>Weights are stored as {@code [outChannels, inChannels]} (PyTorch {@code nn.Linear}).
 *   <li>Types: every op computes in fp32 or wider. Its float tensors are all FP32 or all BF16, as
 *       its first (output) buffer is, except the saved statistics ({@code mean}, {@code rstd},
 *       {@code lse}) and {@code losses}, always FP32, and token ids and targets, INT32. A matmul may
 *       read BF16 {@code inp} and {@code weight} into an FP32 {@code out} (and FP32 {@code bias});
 *       its backward takes {@code dout}, {@code inp} and {@code weight} of one type and may write
 *       gradients of either. BF16 outputs are rounded to nearest even when stored; how often an
 *       op stores (the CUDA {@code encoderBackward} adds into {@code dwte} once per occurrence of a
 *       token) is the backend's.
 * </ul>
 */
public interface TransformerOps {

    /**
     * Token plus position embedding: {@code out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]}.
     *
     * @param out    {@code [b, t, c]}
     * @param tokens INT32 {@code [b, t]}, each in {@code [0, rows of wte)}
     * @param wte    token embedding {@code [vocab, c]}
     * @param wpe    position embedding {@code [maxT, c]} with {@code maxT >= t}
     */
    void encoderForward(Buffer out, Buffer tokens, Buffer wte, Buffer wpe, int b, int t, int c);

    /** Gradient of {@link #encoderForward}: accumulates into {@code dwte} and {@code dwpe}. */
    void encoderBackward(Buffer dwte, Buffer dwpe, Buffer dout, Buffer tokens, int b, int t, int c);

    /**
     * LayerNorm over the last dimension with eps 1e-5:
     * {@code out = (inp - mean) · rstd · weight + bias}.
     *
     * @param mean saved per-row mean {@code [n]}, for the backward pass
     * @param rstd saved per-row {@code 1/sqrt(var + eps)} {@code [n]} (biased variance)
     */
    void layerNormForward(Buffer out, Buffer mean, Buffer rstd, Buffer inp, Buffer weight, Buffer bias,
                          int n, int c);

    /** Gradient of {@link #layerNormForward}: accumulates into {@code dinp}, {@code dweight}, {@code dbias}. */
    void layerNormBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp,
                           Buffer weight, Buffer mean, Buffer rstd, int n, int c);

    /**
     * {@code out[n, oc] = inp[n, c] · weight[oc, c]ᵀ + bias[oc]}.
     *
     * @param bias {@code [oc]}, or {@code null} for none
     */
    void matmulForward(Buffer out, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc);

    /**
     * Gradient of {@link #matmulForward}: accumulates {@code dinp += dout · weight},
     * {@code dweight += doutᵀ · inp} and {@code dbias += Σ_rows dout}.
     *
     * @param dinp    {@code [n, c]}, or {@code null} when the input needs no gradient
     * @param dweight {@code [oc, c]}, or {@code null} when the weight needs none (it is frozen)
     * @param dbias   {@code [oc]}, or {@code null} when there is no bias or it needs no gradient
     */
    void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                        int n, int c, int oc);

    /**
     * Causal multi-head self-attention with scale {@code 1/sqrt(c/nh)}, no dropout.
     *
     * @param out {@code [b, t, c]}, the heads concatenated
     * @param lse saved log-sum-exp of each softmax row {@code [b, nh, t]}: the backward pass
     *            recomputes the probabilities from it, so no {@code t×t} matrix is kept
     * @param qkv {@code [b, t, 3c]}: queries, keys and values, each split into {@code nh} heads of
     *            {@code c/nh} channels
     */
    void attentionForward(Buffer out, Buffer lse, Buffer qkv, int b, int t, int c, int nh);

    /** Gradient of {@link #attentionForward}: accumulates into {@code dqkv}. */
    void attentionBackward(Buffer dqkv, Buffer dout, Buffer qkv, Buffer out, Buffer lse,
                           int b, int t, int c, int nh);

    /** GELU, tanh approximation: {@code 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))}. */
    void geluForward(Buffer out, Buffer inp, int n);

    /** Gradient of {@link #geluForward}: accumulates into {@code dinp}. */
    void geluBackward(Buffer dinp, Buffer inp, Buffer dout, int n);

    /** {@code out = a + b} over {@code n} elements. */
    void residualForward(Buffer out, Buffer a, Buffer b, int n);

    /** Gradient of {@link #residualForward}: {@code da += dout}, {@code db += dout}. */
    void residualBackward(Buffer da, Buffer db, Buffer dout, int n);

    /**
     * Fused softmax and cross-entropy over the first {@code v} of {@code vp} columns (the rest are
     * vocabulary padding and never win probability).
     *
     * <p>Writes {@code losses[i] = logsumexp(logits[i, :v]) - logits[i, targets[i]]}. When
     * {@code gradScale != 0} it then <em>overwrites</em> {@code logits} with the gradient of
     * {@code gradScale · Σ_i losses[i]}, that is {@code (softmax - onehot) · gradScale}, and zero in
     * the padding columns; so the full-vocabulary probabilities are never held twice. Pass
     * {@code gradScale = 1/(B·T)} for the gradient of the mean loss.
     *
     * @param losses  FP32 {@code [n]}
     * @param logits  {@code [n, vp]}
     * @param targets INT32 {@code [n]}, each in {@code [0, v)}
     */
    void softmaxCrossEntropy(Buffer losses, Buffer logits, Buffer targets, int n, int v, int vp, float gradScale);
}
