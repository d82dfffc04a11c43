package dev.anvil.bench.harness;

import dev.anvil.engine.cli.AnvilSubcommand;
import dev.anvil.engine.cli.BackendOptions;
import dev.anvil.engine.cli.Version;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.train.ProgressLine;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.cpu.CpuBackend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.Callable;

/**
 * {@code anvil bench-train}: training throughput, step-time breakdown, MFU, peak memory and cost of
 * a model on synthetic tokens, printed and saved as JSON and a CSV row.
 */
@Command(name = "bench-train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Measure training speed: real steps (forward, backward, clip, AdamW) on random tokens.",
                "Prints tokens/s, the step time by phase, MFU, peak memory and cost; writes JSON and a CSV row."})
public final class BenchTrainCommand implements Callable<Integer>, AnvilSubcommand {

    private static final DateTimeFormatter FILE_TIME = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'")
            .withZone(ZoneOffset.UTC);

    @Option(names = "--preset", defaultValue = "tiny", description = "Model shape: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})",
            completionCandidates = Presets.class)
    String preset;

    @Mixin
    BackendOptions compute;

    @Option(names = "--batch-size", defaultValue = "4", description = "Sequences per step, B (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--seq-len", description = "Tokens per sequence, T (default: the model's context length)")
    Integer seqLen;

    @Option(names = "--steps", defaultValue = "20", description = "Measured steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--warmup", defaultValue = "3", description = "Unmeasured steps first (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--world-size", defaultValue = "1", description = "Data-parallel ranks, R; only 1 so far (default: ${DEFAULT-VALUE})")
    int worldSize;

    @Option(names = "--price-per-gpu-hour", paramLabel = "USD", description = "Dollars per GPU-hour (or per node-hour on the CPU), for the cost per 1M tokens")
    Double pricePerGpuHour;

    @Option(names = "--peak-tflops", paramLabel = "X|GPU", description = {
            "Peak of one device for MFU: TFLOPS, or a GPU whose dense peak for --dtype is used: "
                    + "h100-sxm, h100-pcie, h200, a100, l4, a10g, rtx4090.",
            "Default on the CPU: a short matmul calibration."})
    String peakTflops;


    @Option(names = "--seed", defaultValue = "1337", description = "Seed of the weights and tokens (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the result here (default: bench-train-<preset>-<backend>-<time>.json)")
    Path json;

    @Option(names = "--csv", paramLabel = "FILE", defaultValue = "bench-train.csv", description = "Append a row here, with a header if new (default: ${DEFAULT-VALUE})")
    Path csv;

    @Override
    public Integer call() throws IOException {
        PrintStream out = System.out;
        if (worldSize != 1) {
            throw new IllegalArgumentException("bench-train runs one rank so far; drop --world-size (or use 1). "
                    + "For communication alone, run the AllReduceBenchmark JMH benchmark");
        }
        if (pricePerGpuHour != null && pricePerGpuHour < 0) {
            throw new IllegalArgumentException("--price-per-gpu-hour must be >= 0, got " + pricePerGpuHour);
        }
        GptConfig model = GptConfig.preset(preset);
        TrainBenchmark.Settings settings = new TrainBenchmark.Settings(model, compute.dtype(), batchSize,
                seqLen == null ? model.maxSeqLen() : seqLen, steps, warmup, seed);
        String dtype = compute.dtype().toString().toLowerCase(Locale.ROOT);
        Peak fixedPeak = peakTflops == null ? null : Peak.parse(peakTflops, dtype);
        try (Backend backend = compute.open()) {
            out.printf("bench-train: %s on %s, %s, B=%d T=%d, %d warmup + %d measured steps%n", preset,
                    backend.description(), dtype, settings.batchSize(), settings.seqLen(), warmup, steps);
            // The CPU backend keeps its buffers on the heap; a GPU backend would report its device memory here.
            MemoryProbe memory = new MemoryProbe(OptionalLong::empty);
            // In a log, one line per step: a run cut short by a time limit still shows how far it got.
            TrainBenchmark.Measurement m = TrainBenchmark.run(backend, settings, memory,
                    new ProgressLine(out, ProgressLine.stdoutIsTerminal(), 0));
            Peak peak = fixedPeak != null ? fixedPeak : CpuPeak.measure(backend);
            Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
            BenchResult result = result(settings, backend, dtype, m, memory, peak, now);
            ResultTable.print(result, out);
            Path jsonFile = json != null ? json
                    : Path.of("bench-train-" + preset + "-" + compute.backendName() + "-" + FILE_TIME.format(now) + ".json");
            ResultFiles.writeJson(result, jsonFile);
            ResultFiles.appendCsv(result, csv);
            out.printf("%nwrote %s; appended a row to %s%n", jsonFile, csv);
            return 0;
        }
    }

    private BenchResult result(TrainBenchmark.Settings s, Backend compute, String dtype, TrainBenchmark.Measurement m,
                               MemoryProbe memory, Peak peak, Instant now) {
        long tokensPerStep = (long) s.batchSize() * s.seqLen() * worldSize;
        Stats tokensPerS = Stats.of(Arrays.stream(m.stepSeconds()).map(sec -> tokensPerStep / sec).toArray());
        Stats stepMs = Stats.of(Arrays.stream(m.stepSeconds()).map(sec -> sec * 1e3).toArray());
        Map<String, Double> phaseMs = new LinkedHashMap<>();
        for (Phase p : Phase.values()) {
            phaseMs.put(p.label(), Arrays.stream(m.phaseNanos()).mapToLong(n -> n[p.ordinal()]).average().orElseThrow() / 1e6);
        }
        long flopsPerToken = Flops.perToken(s.model(), s.seqLen());
        double mfu = Flops.mfu(flopsPerToken, tokensPerS.median(), peak.tflops(), worldSize);
        Double cost = pricePerGpuHour == null ? null
                : Cost.perMillionTokens(pricePerGpuHour, worldSize, tokensPerS.median());
        return new BenchResult(Version.current(), now.toString(), preset, s.model().toString(),
                s.model().parameterCount(), compute.description(), dtype,
                compute instanceof CpuBackend cpu ? cpu.threads() : null, s.batchSize(), s.seqLen(), worldSize,
                s.steps(), s.warmup(), tokensPerStep, tokensPerS, stepMs, phaseMs, flopsPerToken,
                flopsPerToken * tokensPerS.median() / 1e12, peak.tflops(), peak.source(), mfu,
                memory.heapPeakBytes(), memory.offHeapPeakBytes(), memory.devicePeakBytes(), pricePerGpuHour, cost,
                m.finalLoss());
    }

    /** The preset names, for help and completion. */
    static final class Presets extends java.util.ArrayList<String> {
        Presets() {
            super(GptConfig.PRESETS);
        }
    }
}
