package dev.anvil.kernels.cuda;

import java.util.Objects;

/**
 * How {@link CudaBackend#open(CudaOptions)} sets up the backend.
 *
 * @param device    ordinal of the GPU to use
 * @param tf32      let fp32 matmuls round their inputs to TF32 on tensor cores: several times faster,
 *                  but about 1e-3 relative error, so off by default (fp32 conformance checks 1e-5)
 * @param attention the attention kernels: tensor cores where they apply (the default), or the FMA ones
 */
public record CudaOptions(int device, boolean tf32, AttentionKernels attention) {

    public CudaOptions {
        if (device < 0) {
            throw new IllegalArgumentException("device ordinal " + device + " is negative");
        }
        Objects.requireNonNull(attention, "attention");
    }

    /** Tensor-core attention where it applies. */
    public CudaOptions(int device, boolean tf32) {
        this(device, tf32, AttentionKernels.TC);
    }

    /** Device 0, full fp32 matmuls, tensor-core attention where it applies. */
    public static CudaOptions defaults() {
        return new CudaOptions(0, false);
    }

    /** These options with other attention kernels. */
    public CudaOptions withAttention(AttentionKernels kernels) {
        return new CudaOptions(device, tf32, kernels);
    }
}
