package dev.anvil.engine.train;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Appends one JSON object per step to a {@code .jsonl} file ({@code step}, {@code loss},
 * {@code lr}, {@code grad_norm}, {@code tokens_per_s}, {@code elapsed_s}, and {@code val_loss}
 * when evaluated). A resumed run appends to the same file; each line is flushed so a killed run
 * keeps every finished step.
 */
public final class MetricsLog implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .setSerializationInclusion(JsonInclude.Include.NON_NULL);

    private final BufferedWriter writer;

    /** Opens {@code file} for appending, creating it and its directory if needed. */
    public MetricsLog(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        this.writer = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }

    /** Writes one step's line. */
    public void write(StepMetrics metrics) {
        try {
            writer.write(JSON.writeValueAsString(metrics));
            writer.newLine();
            writer.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write metrics: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws IOException {
        writer.close();
    }
}
