package dev.anvil.bench.compare;

import dev.anvil.bench.harness.BenchResult;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

/**
 * The cells of {@code anvil bench-compare}'s table: one row per figure, one column per result,
 * numbers followed by their ratio to the first result's.
 */
final class ComparisonTable {

    /** A row of text. */
    private record Label(String name, Function<BenchResult, String> text) {
    }

    /** A row of numbers; {@code null} where a result lacks the figure. */
    private record Figure(String name, String format, Function<BenchResult, Double> value) {
    }

    private static final List<Label> LABELS = List.of(
            new Label("preset", BenchResult::preset),
            new Label("backend", BenchResult::backend),
            new Label("dtype", BenchResult::dtype),
            new Label("B x T x R", r -> r.batchSize() + " x " + r.seqLen() + " x " + r.worldSize()),
            new Label("steps (warmup)", r -> r.steps() + " (" + r.warmup() + ")"));

    private static final List<Figure> FIGURES = List.of(
            figure("tokens/s median", "%,.0f", r -> r.tokensPerS().median()),
            figure("tokens/s min", "%,.0f", r -> r.tokensPerS().min()),
            figure("tokens/s max", "%,.0f", r -> r.tokensPerS().max()),
            figure("step ms median", "%,.2f", r -> r.stepMs().median()),
            new Figure("  data ms", "%,.3f", r -> r.phaseMs().get("data")),
            new Figure("  forward ms", "%,.2f", r -> r.phaseMs().get("forward")),
            new Figure("  lm head ms", "%,.2f", r -> r.phaseMs().get("lm_head")),
            new Figure("  backward ms", "%,.2f", r -> r.phaseMs().get("backward")),
            new Figure("  communication ms", "%,.2f", r -> r.phaseMs().get("communication")),
            new Figure("  optimizer ms", "%,.2f", r -> r.phaseMs().get("optimizer")),
            figure("parameters", "%,.0f", r -> r.parameters()),
            figure("achieved TFLOPS", "%.4f", BenchResult::achievedTflops),
            new Figure("peak TFLOPS", "%.4f", BenchResult::peakTflops),
            new Figure("MFU %", "%.2f", r -> r.mfu() == null ? null : 100 * r.mfu()),
            figure("heap peak MiB", "%,.1f", r -> r.heapPeakBytes() / 1048576.0),
            new Figure("device peak MiB", "%,.1f", r -> r.devicePeakBytes() == null ? null : r.devicePeakBytes() / 1048576.0),
            new Figure("$ per 1M tokens", "%.4f", BenchResult::costPerMillionTokens));

    private ComparisonTable() {
    }

    private static Figure figure(String name, String format, ToDoubleFunction<BenchResult> value) {
        return new Figure(name, format, r -> value.applyAsDouble(r));
    }

    /** The header row (the names), then label rows, then figure rows. */
    static List<List<String>> of(List<String> names, List<BenchResult> results) {
        List<List<String>> rows = new ArrayList<>();
        List<String> header = new ArrayList<>(List.of(""));
        header.addAll(names);
        rows.add(header);
        for (Label label : LABELS) {
            List<String> row = new ArrayList<>(List.of(label.name()));
            results.forEach(r -> row.add(label.text().apply(r)));
            rows.add(row);
        }
        for (Figure figure : FIGURES) {
            Double base = figure.value().apply(results.getFirst());
            List<String> row = new ArrayList<>(List.of(figure.name()));
            for (int i = 0; i < results.size(); i++) {
                Double v = figure.value().apply(results.get(i));
                row.add(cell(figure.format(), v, i == 0 ? null : base));
            }
            rows.add(row);
        }
        return rows;
    }

    /** {@code value (ratio x)}; the baseline, a missing figure or a zero baseline get no ratio. */
    static String cell(String format, Double value, Double base) {
        if (value == null) {
            return "n/a";
        }
        String text = String.format(Locale.ROOT, format, value);
        if (base == null || base == 0) {
            return text;
        }
        return text + String.format(Locale.ROOT, " (%.3gx)", value / base); // 3 figures: ratios span 0.01x to 1000x
    }
}
