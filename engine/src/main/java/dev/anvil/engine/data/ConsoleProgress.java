package dev.anvil.engine.data;

import java.io.Console;
import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar for {@link Prepare}. On a terminal it redraws in place at most ten times a
 * second; when output is redirected (logs, CI) it prints a plain line at most every 30 seconds instead, so
 * logs are not flooded with carriage returns.
 */
final class ConsoleProgress implements TokenStreamer.Progress {

    private static final long TERMINAL_INTERVAL_NANOS = 100_000_000L;
    private static final long LOG_INTERVAL_NANOS = 30_000_000_000L;
    private static final int WIDTH = 30;

    private final PrintStream out;
    private final boolean terminal;
    private final long totalBytes;
    private final long start = System.nanoTime();
    private long lastPrint = start;

    ConsoleProgress(PrintStream out, boolean terminal, long totalBytes) {
        this.out = out;
        this.terminal = terminal;
        this.totalBytes = Math.max(totalBytes, 1);
    }

    /** A bar on standard error, redrawn in place only if the JVM runs in a terminal. */
    static ConsoleProgress onStandardError(long totalBytes) {
        Console console = System.console();
        return new ConsoleProgress(System.err, console != null && console.isTerminal(), totalBytes);
    }

    @Override
    public void update(long bytesRead, long tokens) {
        long now = System.nanoTime();
        if (now - lastPrint < (terminal ? TERMINAL_INTERVAL_NANOS : LOG_INTERVAL_NANOS)) {
            return;
        }
        lastPrint = now;
        String line = line(bytesRead, tokens, now);
        if (terminal) {
            out.print("\r" + line);
        } else {
            out.println(line);
        }
        out.flush();
    }

    /** Prints the final state and ends the line. */
    void finish(long bytesRead, long tokens) {
        out.print((terminal ? "\r" : "") + line(bytesRead, tokens, System.nanoTime()) + System.lineSeparator());
        out.flush();
    }

    private String line(long bytesRead, long tokens, long now) {
        double fraction = Math.min(1.0, (double) bytesRead / totalBytes);
        int filled = (int) Math.round(fraction * WIDTH);
        double seconds = Math.max((now - start) / 1e9, 1e-9);
        String eta = fraction > 0 ? formatSeconds(seconds * (1 - fraction) / fraction) : "?";
        return String.format(Locale.ROOT, "prepare [%s%s] %3.0f%% %s/%s  %,d tokens  %s tokens/s  eta %s",
                "=".repeat(filled), " ".repeat(WIDTH - filled), 100 * fraction, megabytes(bytesRead),
                megabytes(totalBytes), tokens, compact(tokens / seconds), eta);
    }

    private static String megabytes(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }

    private static String compact(double value) {
        return value >= 1e6 ? String.format(Locale.ROOT, "%.1fM", value / 1e6)
                : String.format(Locale.ROOT, "%.0fk", value / 1e3);
    }

    private static String formatSeconds(double seconds) {
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }
}
