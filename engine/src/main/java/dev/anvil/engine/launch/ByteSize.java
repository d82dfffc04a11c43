package dev.anvil.engine.launch;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte counts as people write them: {@code 4KB}, {@code 64MB}, {@code 1GB}. Units are powers of
 * 1024, as nccl-tests reads its {@code -b}/{@code -e} sizes; {@code KiB}, {@code K} and no unit
 * (bytes) are accepted too.
 */
public final class ByteSize {

    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*(|B|K|KB|KIB|M|MB|MIB|G|GB|GIB)");

    private ByteSize() {
    }

    /**
     * Parses {@code text}.
     *
     * @throws IllegalArgumentException saying what a size looks like
     */
    public static long parse(String text) {
        Matcher m = SIZE.matcher(text.strip().toUpperCase(Locale.ROOT));
        if (!m.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a size: write a whole number with an optional"
                    + " unit B, KB, MB or GB (powers of 1024), e.g. 64MB");
        }
        int shift = switch (m.group(2)) {
            case "", "B" -> 0;
            case "K", "KB", "KIB" -> 10;
            case "M", "MB", "MIB" -> 20;
            default -> 30;
        };
        long value;
        try {
            value = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("size '" + text + "' is too large");
        }
        if (value > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("size '" + text + "' is too large");
        }
        return value << shift;
    }

    /** {@code bytes} in the largest unit that divides it, e.g. {@code 64MB}, {@code 1536KB}, {@code 100B}. */
    public static String format(long bytes) {
        String[] units = {"B", "KB", "MB", "GB"};
        int unit = 0;
        while (unit < units.length - 1 && bytes != 0 && bytes % 1024 == 0) {
            bytes /= 1024;
            unit++;
        }
        return bytes + units[unit];
    }
}
