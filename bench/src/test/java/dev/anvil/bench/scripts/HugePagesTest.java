package dev.anvil.bench.scripts;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bin/anvil and bin/jmh ask for transparent huge pages only where the kernel gives them on request:
 * under "always" the flag is not needed, under "never" (or without the file) the JVM would warn.
 */
class HugePagesTest {

    @TempDir
    Path dir;

    @Test
    void asksForHugePagesOnlyWhenTheKernelGivesThemOnRequest() throws Exception {
        assertEquals("-XX:+UseTransparentHugePages", flagFor("always [madvise] never"));
        assertEquals("", flagFor("[always] madvise never"));
        assertEquals("", flagFor("always madvise [never]"));
        assertEquals("", flagFor(null));
    }

    /** What bin/huge-pages prints when the kernel's mode file reads {@code mode} ({@code null}: no file). */
    private String flagFor(String mode) throws Exception {
        Path file = dir.resolve("enabled");
        Files.deleteIfExists(file);
        if (mode != null) {
            Files.writeString(file, mode + "\n");
        }
        Shell.Result r = Shell.bash(Shell.ROOT, Map.of("ANVIL_THP_MODE_FILE", file.toString()), 30,
                "set -eu; . bin/huge-pages; anvil_huge_pages");
        assertEquals(0, r.exit(), r.toString());
        return r.out().strip();
    }
}
