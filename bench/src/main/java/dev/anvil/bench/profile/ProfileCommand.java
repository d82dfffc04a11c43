package dev.anvil.bench.profile;

import dev.anvil.bench.harness.CpuPeak;
import dev.anvil.bench.harness.Peak;
import dev.anvil.engine.cli.AnvilSubcommand;
import dev.anvil.engine.cli.BackendOptions;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.cuda.CudaBackend;
import dev.anvil.kernels.cuda.EventTimeline;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;

/**
 * {@code anvil bench-profile}: where one training step's time goes, by op class, against each
 * class's roofline. On a GPU each op is bracketed by CUDA events on the stream (no synchronisation
 * between ops, so the step runs as in training); on the CPU by the host clock.
 */
@Command(name = "bench-profile", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Per-op time breakdown of one training step against each op's roofline.",
                "Runs warmup steps, then one profiled step (forward, backward, clip, AdamW) on random tokens."})
public final class ProfileCommand implements Callable<Integer>, AnvilSubcommand {

    @Option(names = "--preset", defaultValue = "gpt-1.3b", description = "Model shape (default: ${DEFAULT-VALUE})")
    String preset;

    @Mixin
    BackendOptions compute;

    @Option(names = "--batch-size", defaultValue = "8", description = "Sequences per step (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--seq-len", description = "Tokens per sequence (default: the model's context length)")
    Integer seqLen;

    @Option(names = "--warmup", defaultValue = "2", description = "Unprofiled steps first (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--peak-tflops", description = "Peak TFLOPS, or a GPU (h100-sxm, h200, a100, ...) "
            + "(default: from the GPU's name; measured on the CPU)")
    String peakTflops;

    @Option(names = "--bandwidth-gbps", description = "Memory bandwidth in GB/s (default: from the GPU's name "
            + "(H200 4800, H100 SXM 3350, H100 PCIe 2000, A100 2039); 20 on the CPU)")
    Double bandwidthGbps;

    @Override
    public Integer call() {
        PrintStream out = System.out;
        GptConfig model = GptConfig.preset(preset);
        int t = seqLen == null ? model.maxSeqLen() : seqLen, b = batchSize;
        String dtype = compute.dtype().toString().toLowerCase(Locale.ROOT);
        try (Backend backend = compute.open(); Timelines timelines = Timelines.of(backend)) {
            Roofline roofline = new Roofline(peak(backend, dtype).tflops(), bandwidth(backend.description()));
            ProfiledBackend profiled = new ProfiledBackend(backend, timelines.timeline());
            out.printf(Locale.ROOT, "bench-profile: %s on %s, %s, B=%d T=%d; roofline %.0f TFLOPS, %.0f GB/s%n", preset,
                    backend.description(), dtype, b, t, roofline.peakTflops(), roofline.bandwidthGbps());
            double[] idle = new double[1];
            Map<String, Roofline.Row> rows;
            try (GptModel gpt = new GptModel(profiled, model, compute.dtype());
                 AdamW adamw = new AdamW(profiled, gpt.layout(), new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f))) {
                gpt.recompute(compute.recompute());
                gpt.initialize(1337);
                SplittableRandom tokens = new SplittableRandom(1);
                int[] inputs = new int[b * t], targets = new int[b * t];
                for (int i = 0; i <= warmup; i++) {
                    for (int k = 0; k < inputs.length; k++) {
                        inputs[k] = tokens.nextInt(model.vocabSize());
                        targets[k] = tokens.nextInt(model.vocabSize());
                    }
                    if (i == warmup) {
                        profiled.start();
                    }
                    gpt.zeroGradients();
                    gpt.forwardStep(inputs, targets, b, t, 1f);
                    gpt.backward();
                    CompletableFuture<Float> norm = adamw.stepClipped(gpt, 1e-4f);
                    gpt.takeLosses();
                    norm.join();
                }
                rows = profiled.stop(idle);
            }
            List<String> table = roofline.table(rows, idle[0]);
            table.forEach(out::println);
            double stepMillis = rows.values().stream().mapToDouble(Roofline.Row::millis).sum() + idle[0];
            out.printf(Locale.ROOT, "tokens/s from this step: %.0f%n", b * (double) t / (stepMillis / 1e3));
        }
        return 0;
    }

    private Peak peak(Backend backend, String dtype) {
        if (peakTflops != null) {
            return Peak.parse(peakTflops, dtype);
        }
        if (!(backend instanceof CudaBackend)) {
            return CpuPeak.measure(backend);
        }
        return Peak.parse(gpuKey(backend.description()), dtype);
    }

    /** The {@link Peak#KNOWN_GPUS} key for a CUDA backend's description; the H100 SXM when unknown. */
    static String gpuKey(String description) {
        String d = description.toUpperCase(Locale.ROOT);
        if (d.contains("H200")) {
            return "h200";
        }
        if (d.contains("H100") && d.contains("PCIE")) {
            return "h100-pcie";
        }
        return d.contains("A100") ? "a100" : "h100-sxm";
    }

    private double bandwidth(String description) {
        if (bandwidthGbps != null) {
            return bandwidthGbps;
        }
        return switch (description.startsWith("cuda") ? gpuKey(description) : "cpu") {
            case "h200" -> 4800;
            case "h100-pcie" -> 2000;
            case "a100" -> 2039;
            case "h100-sxm" -> 3350;
            default -> 20;
        };
    }

    /** The timeline of a backend: CUDA events where it is the CUDA backend, else the host clock. */
    private interface Timelines extends AutoCloseable {
        ProfiledBackend.Timeline timeline();

        @Override
        void close();

        static Timelines of(Backend backend) {
            if (backend instanceof CudaBackend cuda) {
                EventTimeline events = cuda.timeline();
                ProfiledBackend.Timeline timeline = new ProfiledBackend.Timeline() {
                    @Override
                    public void mark() {
                        events.mark();
                    }

                    @Override
                    public float[] millis() {
                        return events.millis();
                    }
                };
                return new Timelines() {
                    @Override
                    public ProfiledBackend.Timeline timeline() {
                        return timeline;
                    }

                    @Override
                    public void close() {
                        events.close();
                    }
                };
            }
            List<Long> nanos = new ArrayList<>();
            ProfiledBackend.Timeline host = new ProfiledBackend.Timeline() {
                @Override
                public void mark() {
                    backend.synchronize();
                    nanos.add(System.nanoTime());
                }

                @Override
                public float[] millis() {
                    float[] ms = new float[Math.max(0, nanos.size() - 1)];
                    for (int i = 0; i < ms.length; i++) {
                        ms[i] = (nanos.get(i + 1) - nanos.get(i)) / 1e6f;
                    }
                    nanos.clear();
                    return ms;
                }
            };
            return new Timelines() {
                @Override
                public ProfiledBackend.Timeline timeline() {
                    return host;
                }

                @Override
                public void close() {
                }
            };
        }
    }
}
