package dev.anvil.bench.harness;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.anvil.engine.train.RankMemory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.ToLongFunction;

/** Reads and writes {@link BenchResult}s: one JSON file per run, one CSV row per run. */
public final class ResultFiles {

    /** Unknown keys are skipped so that older Anvils can compare files of newer ones. */
    private static final ObjectMapper JSON = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    private record Column(String header, Function<BenchResult, Object> value) {
    }

    private static final List<Column> COLUMNS = columns();

    private ResultFiles() {
    }

    private static List<Column> columns() {
        List<Column> c = new ArrayList<>(List.of(
                new Column("timestamp", BenchResult::timestamp),
                new Column("anvil_version", BenchResult::anvilVersion),
                new Column("preset", BenchResult::preset),
                new Column("parameters", BenchResult::parameters),
                new Column("backend", BenchResult::backend),
                new Column("dtype", BenchResult::dtype),
                new Column("threads", BenchResult::threads),
                new Column("batch_size", BenchResult::batchSize),
                new Column("seq_len", BenchResult::seqLen),
                new Column("world_size", BenchResult::worldSize),
                new Column("zero", BenchResult::zero),
                new Column("steps", BenchResult::steps),
                new Column("warmup", BenchResult::warmup),
                new Column("tokens_per_s_median", r -> r.tokensPerS().median()),
                new Column("tokens_per_s_min", r -> r.tokensPerS().min()),
                new Column("tokens_per_s_max", r -> r.tokensPerS().max()),
                new Column("step_ms_median", r -> r.stepMs().median())));
        for (Phase p : Phase.values()) {
            c.add(new Column(p.label() + "_ms", r -> r.phaseMs().get(p.label())));
        }
        c.addAll(List.of(
                new Column("flops_per_token", BenchResult::flopsPerToken),
                new Column("achieved_tflops", BenchResult::achievedTflops),
                new Column("peak_tflops", BenchResult::peakTflops),
                new Column("peak_source", BenchResult::peakSource),
                new Column("mfu", BenchResult::mfu),
                new Column("heap_peak_bytes", BenchResult::heapPeakBytes),
                new Column("off_heap_peak_bytes", BenchResult::offHeapPeakBytes),
                new Column("device_peak_bytes", BenchResult::devicePeakBytes),
                new Column("parameter_bytes_per_rank", r -> memory(r, RankMemory::parameters)),
                new Column("gradient_bytes_per_rank", r -> memory(r, RankMemory::gradients)),
                new Column("optimizer_state_bytes_per_rank", r -> memory(r, RankMemory::optimizerState)),
                new Column("activation_bytes_per_rank", r -> memory(r, RankMemory::activations)),
                new Column("price_per_gpu_hour", BenchResult::pricePerGpuHour),
                new Column("cost_per_million_tokens", BenchResult::costPerMillionTokens),
                new Column("final_loss", BenchResult::finalLoss)));
        return List.copyOf(c);
    }

    private static Long memory(BenchResult r, ToLongFunction<RankMemory> part) {
        return r.memoryPerRank() == null ? null : part.applyAsLong(r.memoryPerRank());
    }

    /** Writes {@code result} to {@code file} as JSON, replacing it. */
    public static void writeJson(BenchResult result, Path file) throws IOException {
        createParent(file);
        JSON.writeValue(file.toFile(), result);
    }

    /** Reads a file written by {@link #writeJson}. */
    public static BenchResult readJson(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("no such file: " + file);
        }
        try {
            return JSON.readValue(file.toFile(), BenchResult.class);
        } catch (JacksonException e) {
            throw new IOException(file + " is not a bench-train result: " + e.getOriginalMessage(), e);
        }
    }

    /** The CSV header line. */
    public static String csvHeader() {
        return String.join(",", COLUMNS.stream().map(Column::header).toList());
    }

    /**
     * Appends {@code result} as one row to {@code file}, first writing the header if the file is
     * new or empty.
     *
     * @throws IOException if the file starts with another header (written by another version)
     */
    public static void appendCsv(BenchResult result, Path file) throws IOException {
        createParent(file);
        boolean fresh = !Files.exists(file) || Files.size(file) == 0;
        if (!fresh) {
            String header;
            try (var lines = Files.lines(file, StandardCharsets.UTF_8)) {
                header = lines.findFirst().orElse("");
            }
            if (!header.equals(csvHeader())) {
                throw new IOException(file + " has other columns than this version writes; pass a new --csv file");
            }
        }
        String row = String.join(",", COLUMNS.stream().map(c -> csvField(c.value().apply(result))).toList());
        Files.writeString(file, (fresh ? csvHeader() + "\n" : "") + row + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** RFC 4180: quotes a field holding a comma, quote or line break; {@code null} is empty. */
    private static String csvField(Object value) {
        if (value == null) {
            return "";
        }
        String s = value instanceof Double d ? String.format(Locale.ROOT, "%.6g", d) : value.toString();
        return s.matches("[^,\"\r\n]*") ? s : "\"" + s.replace("\"", "\"\"") + "\"";
    }

    private static void createParent(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
    }
}
