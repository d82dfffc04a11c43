package dev.anvil.kernels.cpu;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.BackendConformanceTest;
import dev.anvil.kernels.DType;
import org.junit.jupiter.api.Nested;

/**
 * The conformance suite on the CPU backend with two threads (the parallel paths: work split
 * across the caller and a worker), and, nested, with one thread (every loop inline) and with the
 * emulated BF16 storage.
 */
class CpuBackendConformanceTest extends BackendConformanceTest {

    @Override
    protected Backend createBackend() {
        return new CpuBackend(2);
    }

    @Nested
    class SingleThread extends BackendConformanceTest {
        @Override
        protected Backend createBackend() {
            return new CpuBackend(1);
        }
    }

    /**
     * BF16 activations, weights and gradients (emulated: fp32 compute, outputs rounded to bf16),
     * fp32 statistics, moments and master weights, under the suite's default BF16 tolerances: the
     * same checks the CUDA backend's BF16 run passes.
     */
    @Nested
    class Bf16 extends BackendConformanceTest {
        @Override
        protected Backend createBackend() {
            return new CpuBackend(2);
        }

        @Override
        protected DType floatType() {
            return DType.BF16;
        }
    }
}
