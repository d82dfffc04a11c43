package dev.anvil.kernels.cuda;

/**
 * How {@link CudaBackend#open(CudaOptions)} sets up the backend.
 *
 * @param device ordinal of the GPU to use
 * @param tf32   let fp32 matmuls round their inputs to TF32 on tensor cores: several times faster,
 *               but about 1e-3 relative error, so off by default (fp32 conformance checks 1e-5)
 */
public record CudaOptions(int device, boolean tf32) {

    public CudaOptions {
        if (device < 0) {
            throw new IllegalArgumentException("device ordinal " + device + " is negative");
        }
    }

    /** Device 0, full fp32 matmuls. */
    public static CudaOptions defaults() {
        return new CudaOptions(0, false);
    }
}
