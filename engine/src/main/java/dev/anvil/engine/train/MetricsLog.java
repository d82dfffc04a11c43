package dev.anvil.engine.train;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import dev.anvil.engine.io.AtomicFiles;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Writes one JSON object per step to a {@code .jsonl} file ({@code step}, {@code loss}, {@code lr},
 * {@code grad_norm}, {@code tokens_per_s}, {@code elapsed_s}, and {@code val_loss} when evaluated),
 * so the file always describes one run: the run's first line, for step {@code s}, replaces the
 * file's lines from step {@code s} on. A fresh run (step 1) thus starts the file afresh, and a
 * resumed run keeps the lines up to the step it resumed after, dropping those of steps it redoes.
 * Each line is flushed, so a killed run keeps every finished step.
 */
public final class MetricsLog implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .setSerializationInclusion(JsonInclude.Include.NON_NULL);

    private final Path file;
    private BufferedWriter writer;

    /** Prepares {@code file}, creating its directory if needed; the file itself is touched by the first line. */
    public MetricsLog(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        this.file = file;
    }

    /** Writes one step's line. */
    public void write(StepMetrics metrics) {
        try {
            if (writer == null) {
                open(metrics.step());
            }
            writer.write(JSON.writeValueAsString(metrics));
            writer.newLine();
            writer.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write metrics to " + file + ": " + e.getMessage(), e);
        }
    }

    /** Keeps the file's lines of steps before {@code firstStep} and opens it for appending. */
    private void open(int firstStep) throws IOException {
        StringBuilder kept = new StringBuilder();
        if (Files.exists(file)) {
            String text = Files.readString(file, StandardCharsets.UTF_8);
            // A last line without its newline was cut short by a kill: it goes.
            List<String> lines = text.substring(0, text.lastIndexOf('\n') + 1).lines().toList();
            for (int i = 0; i < lines.size(); i++) {
                if (step(lines.get(i), i + 1) < firstStep) {
                    kept.append(lines.get(i)).append('\n');
                }
            }
        }
        AtomicFiles.writeString(file, kept.toString());
        writer = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }

    /** The step of one line; a line that is not one of ours stops the run rather than being overwritten. */
    private int step(String line, int number) throws IOException {
        try {
            JsonNode step = JSON.readTree(line).get("step");
            if (step != null && step.canConvertToInt()) {
                return step.intValue();
            }
        } catch (JsonProcessingException e) {
            // reported below
        }
        throw new IOException(file + " line " + number + " is not a line of --metrics-out (no \"step\"); "
                + "is it another file? Choose another --metrics-out or move it away");
    }

    @Override
    public void close() throws IOException {
        if (writer != null) {
            writer.close();
        }
    }
}
