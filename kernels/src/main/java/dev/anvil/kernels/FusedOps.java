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
            zero(dweight);
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
}
