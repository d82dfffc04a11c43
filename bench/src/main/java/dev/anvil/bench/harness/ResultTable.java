package dev.anvil.bench.harness;

import java.io.PrintStream;
import java.util.Locale;

/** Prints a {@link BenchResult} as the human-readable tables of {@code anvil bench-train}. */
final class ResultTable {

    private ResultTable() {
    }

    static void print(BenchResult r, PrintStream out) {
        out.printf(Locale.ROOT, "%n%s (%s), %,d parameters, %s %s%n", r.preset(), r.model(), r.parameters(),
                r.backend(), r.dtype());
        out.printf(Locale.ROOT, "B=%d T=%d R=%d%s: %,d tokens per step; %d measured steps after %d warmup%n%n",
                r.batchSize(), r.seqLen(), r.worldSize(), r.zero() == 1 ? " (ZeRO-1)" : "", r.tokensPerStep(), r.steps(),
                r.warmup());
        out.printf(Locale.ROOT, "%-22s %12s %12s %12s%n", "", "median", "min", "max");
        out.printf(Locale.ROOT, "%-22s %,12.0f %,12.0f %,12.0f%n", "tokens/s", r.tokensPerS().median(),
                r.tokensPerS().min(), r.tokensPerS().max());
        out.printf(Locale.ROOT, "%-22s %12.2f %12.2f %12.2f%n%n", "step time (ms)", r.stepMs().median(),
                r.stepMs().min(), r.stepMs().max());

        double total = r.phaseMs().values().stream().mapToDouble(Double::doubleValue).sum();
        out.printf(Locale.ROOT, "%-22s %12s %8s%n", "step time, mean", "ms", "share");
        for (Phase p : Phase.values()) {
            double ms = r.phaseMs().get(p.label());
            out.printf(Locale.ROOT, "  %-20s %12.3f %7.1f%%%s%n", p.label(), ms, total > 0 ? 100 * ms / total : 0,
                    p == Phase.COMMUNICATION && r.worldSize() == 1 ? "  (one rank)" : "");
        }
        out.printf(Locale.ROOT, "  %-20s %12.3f%n%n", "total", total);

        out.printf(Locale.ROOT, "%-22s %,d (6N + 6·L·C·T, N = all %,d parameters)%n", "FLOPs per token",
                r.flopsPerToken(), r.parameters());
        out.printf(Locale.ROOT, "%-22s %.4f TFLOPS%n", "achieved", r.achievedTflops());
        if (r.mfu() == null) {
            out.printf(Locale.ROOT, "%-22s n/a (%s)%n", "MFU", r.peakSource());
        } else {
            out.printf(Locale.ROOT, "%-22s %.1f%% vs %s: %.4f TFLOPS%n", "MFU", 100 * r.mfu(), r.peakSource(),
                    r.peakTflops());
        }
        out.printf(Locale.ROOT, "%-22s heap %s (garbage not yet collected included), off-heap %s, device %s%n", "peak memory", mib(r.heapPeakBytes()),
                mib(r.offHeapPeakBytes()), r.devicePeakBytes() == null ? "n/a" : mib(r.devicePeakBytes()));
        if (r.memoryPerRank() != null) {
            out.printf(Locale.ROOT, "%-22s %s%n", "memory per rank", r.memoryPerRank().describe());
        }
        if (r.costPerMillionTokens() == null) {
            out.printf(Locale.ROOT, "%-22s n/a (pass --price-per-gpu-hour)%n", "cost per 1M tokens");
        } else {
            out.printf(Locale.ROOT, "%-22s $%.4f at $%.2f per GPU-hour x %d%n", "cost per 1M tokens",
                    r.costPerMillionTokens(), r.pricePerGpuHour(), r.worldSize());
        }
        out.printf(Locale.ROOT, "%-22s %.4f%n", "final loss", r.finalLoss());
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%,.1f MiB", bytes / (1024.0 * 1024.0));
    }
}
