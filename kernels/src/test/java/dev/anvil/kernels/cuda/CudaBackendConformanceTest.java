package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.BackendConformanceTest;
import dev.anvil.kernels.DType;
import org.junit.jupiter.api.Nested;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The conformance suite on the CUDA backend with FP32 tensors (full-fp32 cuBLASLt, no TF32), and,
 * nested, with BF16 activations, weights and gradients. Skipped, with the reason printed, where no
 * GPU is present.
 */
class CudaBackendConformanceTest extends BackendConformanceTest {

    @Override
    protected Backend createBackend() {
        return openOrSkip();
    }

    /** BF16 storage, fp32 statistics, moments and master weights; the suite's default BF16 tolerances. */
    @Nested
    class Bf16 extends BackendConformanceTest {

        @Override
        protected Backend createBackend() {
            return openOrSkip();
        }

        @Override
        protected DType floatType() {
            return DType.BF16;
        }
    }

    private static Backend openOrSkip() {
        assumeTrue(CudaBackend.isAvailable(), () -> {
            String why = CudaBackend.unavailableReason().orElseThrow();
            System.out.println("skipping the CUDA conformance suite: " + why);
            return why;
        });
        return CudaBackend.open();
    }
}
