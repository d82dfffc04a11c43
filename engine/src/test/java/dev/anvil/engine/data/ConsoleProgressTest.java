package dev.anvil.engine.data;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConsoleProgressTest {

    @Test
    void redirectedOutputGetsOneFinalLineInsteadOfARedrawPerUpdate() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ConsoleProgress progress = new ConsoleProgress(new PrintStream(bytes, true, StandardCharsets.UTF_8), false,
                1_000_000);
        for (int i = 1; i <= 10_000; i++) {
            progress.update(i * 100L, i * 30L);
        }
        progress.finish(1_000_000, 300_000);

        String out = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(1, out.lines().count(), out);
        assertTrue(!out.contains("\r") && out.contains("100%") && out.contains("300,000 tokens"), out);
    }
}
