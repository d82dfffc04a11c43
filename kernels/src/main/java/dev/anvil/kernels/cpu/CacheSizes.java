package dev.anvil.kernels.cpu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The data caches of one core, read from Linux's sysfs
 * ({@code /sys/devices/system/cpu/cpu0/cache/index*}), so that {@link GemmBlocking} sizes its
 * blocks for the machine it runs on. Where sysfs says nothing (another OS, a container that hides
 * it) the sizes fall back to those of a modest x86 core, which every current server core exceeds.
 *
 * @param l1 bytes of level-1 data cache of one core
 * @param l2 bytes of level-2 cache of one core
 */
record CacheSizes(long l1, long l2) {

    /** A modest core's caches: what blocking assumes when it cannot read the real ones. */
    static final CacheSizes FALLBACK = new CacheSizes(32 << 10, 256 << 10);

    private static final Path SYSFS = Path.of("/sys/devices/system/cpu/cpu0/cache");
    private static final CacheSizes DETECTED = read(SYSFS);

    CacheSizes {
        if (l1 <= 0 || l2 <= 0) {
            throw new IllegalArgumentException("cache sizes must be positive, got L1 " + l1 + ", L2 " + l2);
        }
    }

    /** This machine's caches, read once. */
    static CacheSizes detected() {
        return DETECTED;
    }

    /**
     * The L1 data and L2 sizes listed under {@code dir} (sysfs's {@code cache} directory of a CPU),
     * each replaced by the fallback's where it is missing or unreadable.
     */
    static CacheSizes read(Path dir) {
        long l1 = 0, l2 = 0;
        for (int index = 0; index < 8; index++) {
            Path entry = dir.resolve("index" + index);
            try {
                int level = Integer.parseInt(Files.readString(entry.resolve("level")).trim());
                String type = Files.readString(entry.resolve("type")).trim();
                long size = parseSize(Files.readString(entry.resolve("size")).trim());
                if (level == 1 && type.equals("Data")) {
                    l1 = size;
                } else if (level == 2 && !type.equals("Instruction")) {
                    l2 = size;
                }
            } catch (IOException | RuntimeException e) {
                // a missing or odd entry: keep what the others said, fall back below
            }
        }
        return new CacheSizes(l1 > 0 ? l1 : FALLBACK.l1, l2 > 0 ? l2 : FALLBACK.l2);
    }

    /** Parses sysfs's {@code 48K}, {@code 2048K}, {@code 260M} or plain bytes. */
    static long parseSize(String text) {
        String s = text.toUpperCase(Locale.ROOT);
        long unit = switch (s.isEmpty() ? ' ' : s.charAt(s.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1L;
        };
        return Long.parseLong(unit == 1 ? s : s.substring(0, s.length() - 1)) * unit;
    }

    @Override
    public String toString() {
        return "L1d " + (l1 >> 10) + " KiB, L2 " + (l2 >> 10) + " KiB";
    }
}
