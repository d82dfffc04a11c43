package dev.anvil.engine.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MetricsLogTest {
    @TempDir
    Path dir;

    private static void run(Path file, int from, int to) throws IOException {
        try (MetricsLog log = new MetricsLog(file)) {
            for (int step = from; step <= to; step++) {
                log.write(new StepMetrics(step, 1.0 / step, 1e-3, 0.5, 1000, step, step % 2 == 0 ? 2.0 : null));
            }
        }
    }

    private static List<Integer> steps(Path file) throws IOException {
        return Files.readAllLines(file).stream()
                .map(l -> Integer.parseInt(l.replaceAll(".*\"step\":(\\d+).*", "$1"))).toList();
    }

    @Test
    void aFreshRunStartsTheFileAfreshInsteadOfAppendingToAnEarlierRun() throws IOException {
        Path file = dir.resolve("runs/a/metrics.jsonl");
        run(file, 1, 5);
        run(file, 1, 3);
        assertEquals(List.of(1, 2, 3), steps(file));
    }

    @Test
    void aResumedRunKeepsTheLinesUpToItsStartAndDropsTheStepsItRedoes() throws IOException {
        Path file = dir.resolve("metrics.jsonl");
        run(file, 1, 7); // killed after step 7; the newest checkpoint is of step 4
        Files.writeString(file, "{\"step\":8,\"lo", java.nio.file.StandardOpenOption.APPEND); // cut short by the kill
        run(file, 5, 9);
        assertEquals(IntStream.rangeClosed(1, 9).boxed().toList(), steps(file));
    }

    @Test
    void aRunThatWritesNoStepLeavesTheFileAsItWas() throws IOException {
        Path file = dir.resolve("metrics.jsonl");
        run(file, 1, 3);
        run(file, 4, 3);
        assertEquals(List.of(1, 2, 3), steps(file));
    }

    @Test
    void aFileThatIsNotMetricsIsRefusedNamingItRatherThanOverwritten() throws IOException {
        Path file = dir.resolve("notes.txt");
        Files.writeString(file, "my notes\n");
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> run(file, 1, 1));
        assertTrue(e.getMessage().contains(file + " line 1 is not a line of --metrics-out"), e.getMessage());
        assertEquals("my notes\n", Files.readString(file));
    }
}
