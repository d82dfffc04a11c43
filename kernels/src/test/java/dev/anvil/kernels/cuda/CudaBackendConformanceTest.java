package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.BackendConformanceTest;
import dev.anvil.kernels.DType;
import org.junit.jupiter.api.Nested;

/**
 * The conformance suite on the CUDA backend with FP32 tensors (full-fp32 cuBLASLt, no TF32), and,
 * nested, with BF16 activations, weights and gradients, once with the tensor-core attention kernels
 * (the default) and once with the FMA ones. Skipped, with the reason printed, where no
 * GPU is present (failed instead under {@code -Danvil.requireCuda=true}: see {@link RequireCuda}).
 */
class CudaBackendConformanceTest extends BackendConformanceTest {

    @Override
    protected Backend createBackend() {
        return RequireCuda.openBackend();
    }

    /** BF16 storage, fp32 statistics, moments and master weights; the suite's default BF16 tolerances. */
    @Nested
    class Bf16 extends BackendConformanceTest {

        @Override
        protected Backend createBackend() {
            return RequireCuda.openBackend();
        }

        @Override
        protected DType floatType() {
            return DType.BF16;
        }
    }

    /** BF16 as above, attention on the CUDA-core FMA kernels: the reference path stays checked. */
    @Nested
    class Bf16FmaAttention extends BackendConformanceTest {

        @Override
        protected Backend createBackend() {
            return RequireCuda.openBackend(CudaOptions.defaults().withAttention(AttentionKernels.FMA));
        }

        @Override
        protected DType floatType() {
            return DType.BF16;
        }
    }
}
