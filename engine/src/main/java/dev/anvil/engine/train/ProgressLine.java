package dev.anvil.engine.train;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;

/**
 * One live status line for long work: on a terminal it is rewritten in place (at most ten times a
 * second); in a log file it becomes a full line at most every {@code logSeconds} seconds, so logs
 * stay short.
 */
public final class ProgressLine {

    private static final long MIN_REDRAW_NANOS = 100_000_000L;

    private final PrintStream out;
    private final boolean terminal;
    private final long logNanos;
    private long lastDraw;
    private boolean drawn;
    private int width;

    /** A progress line on {@code out}; {@code terminal} chooses in-place redraws over log lines. */
    public ProgressLine(PrintStream out, boolean terminal, double logSeconds) {
        this.out = out;
        this.terminal = terminal;
        this.logNanos = (long) (logSeconds * 1e9);
    }

    /** Whether standard output is an interactive terminal. */
    public static boolean stdoutIsTerminal() {
        var console = System.console();
        return console != null && console.isTerminal();
    }

    /** Shows {@code text}; {@code force} draws it even if the last redraw was very recent. */
    public void update(String text, boolean force) {
        long now = System.nanoTime();
        if (!force && drawn && now - lastDraw < (terminal ? MIN_REDRAW_NANOS : logNanos)) {
            return;
        }
        lastDraw = now;
        drawn = true;
        if (terminal) {
            int pad = Math.max(0, width - text.length());
            out.print("\r" + text + " ".repeat(pad));
            width = text.length();
            out.flush();
        } else {
            out.println(text);
        }
    }

    /** Prints a line of its own, above the live line. */
    public void println(String text) {
        if (terminal && width > 0) {
            out.print("\r" + " ".repeat(width) + "\r");
            width = 0;
        }
        out.println(text);
    }

    /** Ends the live line so later output starts on a fresh line. */
    public void finish() {
        if (terminal && width > 0) {
            out.println();
            width = 0;
        }
    }

    /** {@code 1h02m}, {@code 3m07s} or {@code 12s}. */
    public static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        Duration d = Duration.ofMillis((long) (seconds * 1000));
        if (d.toHours() > 0) {
            return String.format(Locale.ROOT, "%dh%02dm", d.toHours(), d.toMinutesPart());
        }
        if (d.toMinutes() > 0) {
            return String.format(Locale.ROOT, "%dm%02ds", d.toMinutes(), d.toSecondsPart());
        }
        return String.format(Locale.ROOT, "%ds", d.toSeconds());
    }
}
