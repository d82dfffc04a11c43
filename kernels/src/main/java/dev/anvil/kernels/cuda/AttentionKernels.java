package dev.anvil.kernels.cuda;

/** Which kernels compute attention on the GPU ({@code --attention}). */
public enum AttentionKernels {
    /**
     * Tensor cores (bf16 {@code mma.sync} flash attention) where they apply: BF16 tensors, head size
     * 64 or 128, channels a multiple of 8; the FMA kernels elsewhere. The default.
     */
    TC,
    /** CUDA-core FMA kernels for every shape and type: the reference the tensor-core path is checked against. */
    FMA
}
