package dev.anvil.kernels.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

class CacheSizesTest {

    @Test
    void readsLevelOneDataAndLevelTwoFromSysfs(@TempDir Path dir) throws IOException {
        entry(dir, 0, 1, "Data", "48K");
        entry(dir, 1, 1, "Instruction", "32K");
        entry(dir, 2, 2, "Unified", "2048K");
        entry(dir, 3, 3, "Unified", "260M");

        assertEquals(new CacheSizes(48 << 10, 2 << 20), CacheSizes.read(dir));
    }

    @Test
    void fallsBackForWhatSysfsDoesNotSay(@TempDir Path dir) throws IOException {
        entry(dir, 0, 1, "Data", "64K");
        entry(dir, 2, 2, "Unified", "not a size");

        assertEquals(new CacheSizes(64 << 10, CacheSizes.FALLBACK.l2()), CacheSizes.read(dir));
        assertEquals(CacheSizes.FALLBACK, CacheSizes.read(dir.resolve("missing")));
    }

    @Test
    void blockingFitsTheCaches() {
        GemmBlocking b = GemmBlocking.of(new CacheSizes(48 << 10, 2 << 20), 12, 32);
        assertEquals(384, b.kc(), "a 384 × 32 B micro-panel fills 48 KiB of L1");
        assertEquals(0, b.mc() % 12);
        assertEquals(0, b.nc() % 32);
    }

    private static void entry(Path dir, int index, int level, String type, String size) throws IOException {
        Path e = Files.createDirectories(dir.resolve("index" + index));
        Files.writeString(e.resolve("level"), level + "\n");
        Files.writeString(e.resolve("type"), type + "\n");
        Files.writeString(e.resolve("size"), size + "\n");
    }
}
