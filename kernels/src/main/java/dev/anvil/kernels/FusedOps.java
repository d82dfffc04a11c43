package dev.anvil.kernels;

/**
 * Compositions of {@link TransformerOps} that a backend may run as fewer passes over memory (the
 * CUDA backend: cuBLASLt epilogues, one kernel for a residual add and the LayerNorm after it). Each
 * default is the plain composition and is the definition: an override must compute the same values,
 * up to rounding. Types and shapes follow the ops they compose.
 */
public interface FusedOps extends TransformerOps, DeviceMemory {

    /**
     * The MLP's up-projection and its GELU: {@code preact = inp · weightᵀ + bias} (kept for the
     * backward pass) and {@code out = gelu(preact)}, both {@code [n, oc]}.
     */
    default void matmulGeluForward(Buffer out, Buffer preact, Buffer inp, Buffer weight, Buffer bias, int n, int c,
                                   int oc) {
        matmulForward(preact, inp, weight, bias, n, c, oc);
        geluForward(out, preact, Math.multiplyExact(n, oc));
    }

    /**
     * {@link #matmulBackward} whose parameter gradients are either added into ({@code accumulate}) or
     * overwritten: the first micro-batch after the gradients were zeroed overwrites, so they need no
     * zeroing and the GEMM reads no old values. {@code dinp} is always added into.
     */
    default void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                                int n, int c, int oc, boolean accumulate) {
        if (!accumulate) {
            if (dweight != null) {
                zero(dweight);
            }
            if (dbias != null) {
                zero(dbias);
            }
        }
        matmulBackward(dinp, dweight, dbias, dout, inp, weight, n, c, oc);
    }

    /**
     * The backward pass of a projection whose input is a GELU's output: {@code inp = gelu(preact)},
     * {@code out = inp · weightᵀ + bias} (the MLP's down-projection). Writes
     * {@code dpreact = gelu'(preact) ∘ (dout · weight)} over {@code [n, c]}, whatever it held, and adds
     * into (or, without {@code accumulate}, overwrites) {@code dweight} and {@code dbias} as
     * {@link #matmulBackward(Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, int, int, int, boolean)}.
     *
     * @param dinp scratch {@code [n, c]} for the gradient of {@code inp}, which backends that fuse the
     *             GELU's derivative into the product never write; its contents afterwards are undefined
     */
    default void matmulGeluBackward(Buffer dpreact, Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout,
                                    Buffer inp, Buffer weight, Buffer preact, int n, int c, int oc,
                                    boolean accumulate) {
        zero(dinp);
        matmulBackward(dinp, dweight, dbias, dout, inp, weight, n, c, oc, accumulate);
        zero(dpreact);
        geluBackward(dpreact, preact, dinp, Math.multiplyExact(n, c));
    }

    /**
     * A residual add and the LayerNorm of its result: {@code residual = a + b}, then
     * {@link #layerNormForward} of {@code residual} into {@code out}, {@code mean} and {@code rstd}.
     * The LayerNorm sees {@code residual} as stored (rounded to its type).
     */
    default void residualLayerNormForward(Buffer residual, Buffer out, Buffer mean, Buffer rstd, Buffer a, Buffer b,
                                          Buffer weight, Buffer bias, int n, int c) {
        residualForward(residual, a, b, Math.multiplyExact(n, c));
        layerNormForward(out, mean, rstd, residual, weight, bias, n, c);
    }

    /**
     * The LM head and its cross-entropy, fused so that the logits never exist for all {@code n}
     * rows at once: {@code z = inp · weightᵀ} ({@code [n, vp]}, as {@link #matmulForward} without
     * bias) is computed {@code rows = scratch.length() / vp} rows at a time into {@code scratch},
     * where {@link #softmaxCrossEntropy} writes each row's loss and, when {@code gradScale != 0},
     * turns the logits into their gradient {@code dz}, which {@link #matmulBackward} then adds
     * into {@code dinp += dz · weight} and {@code dweight += dzᵀ · inp} before the next rows
     * overwrite it. Losses and gradients are those of the unfused ops, up to fp32 rounding: the
     * weight gradient sums the row chunks one after another. Without {@code accumulate}, the first
     * chunk overwrites {@code dweight} instead of adding into it (as
     * {@link #matmulBackward(Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, int, int, int, boolean)}),
     * for the first micro-batch after the gradients were zeroed; {@code dinp} is always added into.
     *
     * @param losses     FP32 {@code [n]}
     * @param dinp       {@code [n, c]}, accumulated into; may be {@code null} when {@code gradScale == 0}
     * @param dweight    {@code [vp, c]}, accumulated into or overwritten; may be {@code null} when
     *                   {@code gradScale == 0}
     * @param inp        {@code [n, c]}, the final LayerNorm's output
     * @param weight     {@code [vp, c]}, the (tied) token embedding
     * @param targets    INT32 {@code [n]}, each in {@code [0, v)}
     * @param scratch    room for the logits of at least one row, {@code [rows, vp]}: the memory this
     *                   op may use, which bounds its peak
     * @param accumulate whether {@code dweight} is added into ({@code true}) or overwritten
     */
    default void lmHeadCrossEntropy(Buffer losses, Buffer dinp, Buffer dweight, Buffer inp, Buffer weight,
                                    Buffer targets, Buffer scratch, int n, int c, int v, int vp, float gradScale,
                                    boolean accumulate) {
        long rows = scratch.length() / Math.max(1, vp);
        if (rows < 1) {
            throw new IllegalArgumentException("scratch of " + scratch.length() + " elements cannot hold one row of "
                    + vp + " logits");
        }
        if (gradScale != 0f && (dinp == null || dweight == null)) {
            throw new IllegalArgumentException("a gradient (gradScale " + gradScale + ") needs dinp and dweight");
        }
        for (int r0 = 0; r0 < n; r0 += (int) rows) {
            int m = (int) Math.min(rows, n - r0);
            Buffer z = scratch.slice(0, (long) m * vp);
            Buffer x = inp.slice((long) r0 * c, (long) m * c);
            matmulForward(z, x, weight, null, m, c, vp);
            softmaxCrossEntropy(losses.slice(r0, m), z, targets.slice(r0, m), m, v, vp, gradScale);
            if (gradScale != 0f) {
                matmulBackward(dinp.slice((long) r0 * c, (long) m * c), dweight, null, z, x, weight, m, c, vp,
                        accumulate || r0 > 0);
            }
        }
    }
}
