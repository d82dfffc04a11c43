package dev.anvil.kernels.cpu;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.BackendConformanceTest;
import org.junit.jupiter.api.Nested;

/**
 * The conformance suite on the CPU backend with two threads (the parallel paths: work split
 * across the caller and a worker), and, nested, with one thread (every loop inline).
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
}
