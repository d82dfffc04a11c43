package dev.anvil.engine.cli;

import dev.anvil.engine.model.Recompute;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import dev.anvil.kernels.cuda.AttentionKernels;
import dev.anvil.kernels.cuda.CudaBackend;
import dev.anvil.kernels.cuda.CudaOptions;
import dev.anvil.kernels.cuda.driver.Driver;
import picocli.CommandLine.Option;

/**
 * {@code --backend}, {@code --dtype}, {@code --attention}, {@code --recompute} and {@code --threads}: a picocli mixin for every command that
 * computes (the benchmarks' too).
 */
public final class BackendOptions {

    @Option(names = "--backend", defaultValue = "cpu", description = "cpu or cuda (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--dtype", defaultValue = "fp32",
            description = "fp32, or bf16 for mixed precision: bf16 weights, activations and gradients with fp32 "
                    + "master weights (emulated, for testing, on --backend cpu; default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--attention", defaultValue = "tc",
            description = "CUDA attention kernels: tc (tensor cores, for bf16 with head size 64 or 128; FMA kernels "
                    + "elsewhere) or fma (CUDA cores everywhere, the reference; default: ${DEFAULT-VALUE})")
    String attention;

    @Option(names = "--recompute", defaultValue = "none",
            description = "Activations the backward pass recomputes instead of keeping: none, attention (each block's "
                    + "attention half) or block (all but each block's input); same results, less memory "
                    + "(default: ${DEFAULT-VALUE})")
    String recompute;

    @Option(names = "--threads", description = "CPU threads (default: all cores, shared among the node's ranks under a launcher)")
    Integer threads;

    /** The backend's name as given: {@code cpu} or {@code cuda}. */
    public String backendName() {
        return backend;
    }

    /** The model's type for parameters, activations and gradients: FP32 or BF16. */
    public DType dtype() {
        return switch (dtype) {
            case "fp32" -> DType.FP32;
            case "bf16" -> DType.BF16;
            default -> throw new IllegalArgumentException("--dtype must be fp32 or bf16, got '" + dtype + "'");
        };
    }

    /** Opens the chosen backend (GPU 0 for cuda), or explains in one line why it cannot. */
    public Backend open() {
        return open(0);
    }

    /**
     * Opens the chosen backend for the process with this node-local rank: with cuda, the rank's own
     * GPU, so ranks sharing a node do not all land on GPU 0. Warns on stderr that bf16 on the CPU is
     * an emulation.
     */
    public Backend open(int localRank) {
        DType type = dtype();
        AttentionKernels kernels = attentionKernels();  // bad values are refused whatever the backend
        recompute();
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
                yield new CpuBackend(threads != null ? threads
                        : cpuThreads(Runtime.getRuntime().availableProcessors(), System.getenv("LOCAL_WORLD_SIZE")));
            }
            case "cuda" -> CudaBackend.open(new CudaOptions(CudaBackend.isAvailable()
                    ? cudaDevice(localRank, Driver.deviceCount()) : 0, false, kernels)); // else open says why not
            default -> throw new IllegalArgumentException("--backend must be cpu or cuda, got '" + backend + "'");
        };
    }

    /** {@code --recompute}. */
    public Recompute recompute() {
        return switch (recompute) {
            case "none" -> Recompute.NONE;
            case "attention" -> Recompute.ATTENTION;
            case "block" -> Recompute.BLOCK;
            default -> throw new IllegalArgumentException("--recompute must be none, attention or block, got '"
                    + recompute + "'");
        };
    }

    /** {@code --attention} as the CUDA backend takes it. */
    AttentionKernels attentionKernels() {
        return switch (attention) {
            case "tc" -> AttentionKernels.TC;
            case "fma" -> AttentionKernels.FMA;
            default -> throw new IllegalArgumentException("--attention must be tc or fma, got '" + attention + "'");
        };
    }

    /**
     * CPU threads when {@code --threads} is not given: all cores, shared out among the ranks of the
     * node when a launcher says how many there are ({@code LOCAL_WORLD_SIZE}, set by
     * {@code bin/launch} and torchrun), so local ranks do not fight over the same cores.
     */
    static int cpuThreads(int cores, String localWorldSize) {
        if (localWorldSize == null || localWorldSize.isBlank()) {
            return cores;
        }
        try {
            return Math.max(1, cores / Math.max(1, Integer.parseInt(localWorldSize.strip())));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("LOCAL_WORLD_SIZE must be a number, got '" + localWorldSize + "'");
        }
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
