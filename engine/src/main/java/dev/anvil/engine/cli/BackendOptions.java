package dev.anvil.engine.cli;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.cpu.CpuBackend;
import dev.anvil.kernels.cuda.CudaBackend;
import dev.anvil.kernels.cuda.CudaOptions;
import dev.anvil.kernels.cuda.driver.Driver;
import picocli.CommandLine.Option;

/** {@code --backend}, {@code --dtype} and {@code --threads}, shared by the commands that compute. */
final class BackendOptions {

    @Option(names = "--backend", defaultValue = "cpu", description = "cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--dtype", defaultValue = "fp32", description = "fp32 or bf16 (bf16 needs --backend cuda; default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;

    /** Opens the chosen backend (GPU 0 for cuda), or explains in one line why it cannot. */
    Backend open() {
        return open(0);
    }

    /**
     * Opens the chosen backend for the process with this node-local rank: with cuda, the rank's own
     * GPU, so ranks sharing a node do not all land on GPU 0.
     */
    Backend open(int localRank) {
        if (!dtype.equals("fp32") && !dtype.equals("bf16")) {
            throw new IllegalArgumentException("--dtype must be fp32 or bf16, got '" + dtype + "'");
        }
        if (threads != null && threads <= 0) {
            throw new IllegalArgumentException("--threads must be positive, got " + threads);
        }
        return switch (backend) {
            case "cpu" -> {
                if (dtype.equals("bf16")) {
                    throw new IllegalArgumentException("the CPU backend trains in fp32 only: use --dtype fp32, or bf16 with --backend cuda");
                }
                yield threads == null ? new CpuBackend() : new CpuBackend(threads);
            }
            case "cuda" -> {
                if (dtype.equals("bf16")) {
                    throw new IllegalArgumentException("bf16 training is not wired into the model yet: use --dtype fp32 with --backend cuda");
                }
                yield CudaBackend.open(new CudaOptions(CudaBackend.isAvailable()
                        ? cudaDevice(localRank, Driver.deviceCount()) : 0, false)); // else open says why not
            }
            default -> throw new IllegalArgumentException("--backend must be cpu or cuda, got '" + backend + "'");
        };
    }

    /**
     * GPU {@code localRank}, as torchrun jobs use it, modulo the GPUs shown: GPU 0 when the
     * scheduler shows each rank just its own (e.g. {@code srun --gpus-per-task=1}), and the right
     * one for {@code --rank} on later nodes, whose local rank is taken to be the global rank.
     */
    static int cudaDevice(int localRank, int visibleGpus) {
        return localRank % visibleGpus;
    }
}
