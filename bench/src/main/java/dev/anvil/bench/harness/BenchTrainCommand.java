package dev.anvil.bench.harness;

import dev.anvil.engine.cli.AnvilSubcommand;
import dev.anvil.collective.Communicator;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.engine.cli.BackendOptions;
import dev.anvil.engine.cli.DistributedOptions;
import dev.anvil.engine.cli.Version;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.train.ProgressLine;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.cpu.CpuBackend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.OutputStream;
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
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.Callable;

/**
 * {@code anvil bench-train}: training throughput, step-time breakdown, MFU, memory and cost of a
 * model on synthetic tokens, printed and saved as JSON and a CSV row. Under {@code bin/launch} (or
 * with {@code --master}, {@code --rank} and {@code --world-size}) it runs data-parallel, each rank
 * training as {@code train} would; rank 0 reports.
 */
@Command(name = "bench-train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Measure training speed: real steps (forward, backward, clip, AdamW) on random tokens.",
                "Prints tokens/s, the step time by phase, MFU, memory per rank and cost; writes JSON and a CSV row.",
                "Data-parallel under bin/launch: bin/launch --nproc-per-node 2 -- bench-train [--zero 1]"})
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

    @Mixin
    DistributedOptions distributed;

    @Option(names = "--zero", defaultValue = "0", paramLabel = "STAGE",
            description = "0 = every rank keeps the whole optimizer state; 1 = shard it across the ranks (default: ${DEFAULT-VALUE})")
    int zero;

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
        if (zero != 0 && zero != 1) {
            throw new IllegalArgumentException("--zero must be 0 or 1, got " + zero);
        }
        if (pricePerGpuHour != null && pricePerGpuHour < 0) {
            throw new IllegalArgumentException("--price-per-gpu-hour must be >= 0, got " + pricePerGpuHour);
        }
        GptConfig model = GptConfig.preset(preset);
        Map<String, String> env = System.getenv();
        Optional<RendezvousConfig> rendezvous = distributed.rendezvous(env);
        int worldSize = rendezvous.map(RendezvousConfig::worldSize).orElse(1);
        boolean leader = rendezvous.map(RendezvousConfig::rank).orElse(0) == 0;
        // Only rank 0 reports; the others run the same steps silently.
        PrintStream out = leader ? System.out : new PrintStream(OutputStream.nullOutputStream());
        TrainBenchmark.Settings settings = new TrainBenchmark.Settings(model, compute.dtype(), batchSize,
                seqLen == null ? model.maxSeqLen() : seqLen, steps, warmup, seed, zero == 1, compute.recompute());
        String dtype = compute.dtype().toString().toLowerCase(Locale.ROOT);
        Peak fixedPeak = peakTflops == null ? null : Peak.parse(peakTflops, dtype);
        String fingerprint = "anvil bench-train " + Version.current() + "; " + settings;
        try (Backend backend = compute.open(rendezvous.map(RendezvousConfig::localRank).orElse(0))) {
            out.printf("bench-train: %s on %s, %s, B=%d T=%d%s, %d warmup + %d measured steps%n", preset,
                    backend.description(), dtype, settings.batchSize(), settings.seqLen(),
                    worldSize > 1 ? ", " + worldSize + " data-parallel ranks" + (zero == 1 ? " (ZeRO-1)" : "") : "",
                    warmup, steps);
            // The CPU backend keeps its buffers on the heap; a GPU backend would report its device memory here.
            MemoryProbe memory = new MemoryProbe(OptionalLong::empty);
            TrainBenchmark.Measurement m;
            try (Communicator comm = rendezvous.map(r -> distributed.connect(r, fingerprint, env)).orElse(null)) {
                // In a log, one line per step: a run cut short by a time limit still shows how far it got.
                m = TrainBenchmark.run(backend, settings, comm, memory,
                        new ProgressLine(out, ProgressLine.stdoutIsTerminal(), 0));
                if (comm != null) {
                    comm.finish(); // every rank finished its last step: none mistakes the others leaving for a lost rank
                }
            }
            if (!leader) {
                return 0;
            }
            Peak peak = fixedPeak != null ? fixedPeak : CpuPeak.measure(backend);
            Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
            BenchResult result = result(settings, backend, dtype, worldSize, m, memory, peak, now);
            ResultTable.print(result, out);
            Path jsonFile = json != null ? json
                    : Path.of("bench-train-" + preset + "-" + compute.backendName() + "-" + FILE_TIME.format(now) + ".json");
            ResultFiles.writeJson(result, jsonFile);
            ResultFiles.appendCsv(result, csv);
            out.printf("%nwrote %s; appended a row to %s%n", jsonFile, csv);
            return 0;
        }
    }

    private BenchResult result(TrainBenchmark.Settings s, Backend compute, String dtype, int worldSize,
                               TrainBenchmark.Measurement m, MemoryProbe memory, Peak peak, Instant now) {
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
                m.finalLoss(), s.zero() && worldSize > 1 ? 1 : 0, m.memory());
    }

    /** The preset names, for help and completion. */
    static final class Presets extends java.util.ArrayList<String> {
        Presets() {
            super(GptConfig.PRESETS);
        }
    }
}
