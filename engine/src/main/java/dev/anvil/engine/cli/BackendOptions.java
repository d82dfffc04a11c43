package dev.anvil.engine.cli;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import dev.anvil.kernels.cuda.CudaBackend;
import picocli.CommandLine.Option;

/** {@code --backend}, {@code --dtype} and {@code --threads}, shared by the commands that compute. */
final class BackendOptions {

    @Option(names = "--backend", defaultValue = "cpu", description = "cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--dtype", defaultValue = "fp32",
            description = "fp32, or bf16 for mixed precision: bf16 weights, activations and gradients with fp32 "
                    + "master weights (emulated, for testing, on --backend cpu; default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;

    /** The model's type for parameters, activations and gradients: FP32 or BF16. */
    DType dtype() {
        return switch (dtype) {
            case "fp32" -> DType.FP32;
            case "bf16" -> DType.BF16;
            default -> throw new IllegalArgumentException("--dtype must be fp32 or bf16, got '" + dtype + "'");
        };
    }

    /**
     * Opens the chosen backend, or explains in one line why it cannot; warns on stderr that bf16 on
     * the CPU is an emulation.
     */
    Backend open() {
        DType type = dtype();
        if (threads != null && threads <= 0) {
            throw new IllegalArgumentException("--threads must be positive, got " + threads);
        }
        return switch (backend) {
            case "cpu" -> {
                if (type == DType.BF16) {
                    // Allowed because it is how bf16 runs are tested without a GPU; say it is no speed-up.
                    System.err.println("warning: --dtype bf16 on the CPU is emulated (fp32 compute, results rounded "
                            + "to bf16): for testing mixed precision, not for speed");
                }
                yield threads == null ? new CpuBackend() : new CpuBackend(threads);
            }
            case "cuda" -> CudaBackend.open();
            default -> throw new IllegalArgumentException("--backend must be cpu or cuda, got '" + backend + "'");
        };
    }
}
