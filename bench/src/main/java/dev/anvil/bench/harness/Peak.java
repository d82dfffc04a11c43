package dev.anvil.bench.harness;

import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The peak FLOP/s that MFU is measured against, and where the figure comes from.
 *
 * @param tflops peak of one device in TFLOPS (1e12 FLOP/s)
 * @param source how it was obtained, shown next to the MFU
 */
public record Peak(double tflops, String source) {

    /**
     * One GPU's dense peaks (no 2:4 sparsity), from NVIDIA's datasheets unless {@code source} says
     * otherwise.
     *
     * @param key  what {@code --peak-tflops} accepts
     * @param bf16 bf16 tensor-core TFLOPS with fp32 accumulation
     * @param fp32 fp32 TFLOPS on the CUDA cores (no TF32 tensor cores)
     */
    public record Gpu(String key, String name, double bf16, double fp32, String source) {
    }

    /** GPUs whose peaks are well known. */
    public static final List<Gpu> KNOWN_GPUS = List.of(
            new Gpu("h100-sxm", "NVIDIA H100 SXM5", 989, 67, "H100 datasheet: 1,979 bf16 TFLOPS with sparsity, halved"),
            new Gpu("h100-pcie", "NVIDIA H100 PCIe", 756, 51, "H100 datasheet: 1,513 bf16 TFLOPS with sparsity, halved"),
            new Gpu("h200", "NVIDIA H200 SXM", 989, 67, "H200 datasheet: the H100 SXM's compute"),
            new Gpu("a100", "NVIDIA A100 SXM4/PCIe", 312, 19.5, "A100 datasheet"),
            new Gpu("l4", "NVIDIA L4", 121, 30.3, "L4 datasheet: 242 bf16 TFLOPS with sparsity, halved"),
            new Gpu("a10g", "NVIDIA A10G", 125, 31.2,
                    "assumed: NVIDIA publishes no A10G datasheet; the A10's figures, an upper bound (the A10G clocks lower)"),
            new Gpu("rtx4090", "NVIDIA GeForce RTX 4090", 165.2, 82.6,
                    "Ada whitepaper: bf16 with fp32 accumulation, dense"));

    public Peak {
        if (!(tflops > 0)) {
            throw new IllegalArgumentException("peak TFLOPS must be positive, got " + tflops);
        }
    }

    /**
     * The peak that {@code --peak-tflops} names: a number of TFLOPS, or a key of
     * {@link #KNOWN_GPUS} whose peak for {@code dtype} is taken.
     */
    public static Peak parse(String spec, String dtype) {
        Optional<Gpu> gpu = KNOWN_GPUS.stream().filter(g -> g.key().equalsIgnoreCase(spec.trim())).findFirst();
        if (gpu.isPresent()) {
            Gpu g = gpu.get();
            boolean bf16 = dtype.equals("bf16");
            return new Peak(bf16 ? g.bf16() : g.fp32(), String.format(Locale.ROOT, "%s dense %s peak (%s)",
                    g.name(), bf16 ? "bf16" : "fp32", g.source()));
        }
        try {
            return new Peak(Double.parseDouble(spec), "--peak-tflops");
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--peak-tflops takes TFLOPS or a GPU, one of "
                    + String.join(", ", KNOWN_GPUS.stream().map(Gpu::key).toList()) + "; got '" + spec + "'");
        }
    }
}
