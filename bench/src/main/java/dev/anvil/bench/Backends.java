package dev.anvil.bench;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.cpu.CpuBackend;
import dev.anvil.kernels.cuda.CudaBackend;

/**
 * The backend a JMH benchmark runs on, chosen by its {@code backend} parameter: {@code cpu} by
 * default, {@code cuda} with {@code -p backend=cpu,cuda} on a GPU machine. Without a GPU the cuda
 * runs stop in their setup with CUDA's one-line reason, and JMH goes on with the rest.
 */
final class Backends {

    private Backends() {
    }

    static Backend open(String name) {
        return switch (name) {
            case "cpu" -> new CpuBackend();
            case "cuda" -> CudaBackend.open();
            default -> throw new IllegalArgumentException("backend must be cpu or cuda, got '" + name + "'");
        };
    }
}
