package dev.anvil.engine.launch;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Copies a child's output to one of the launcher's streams, line by line, each line prefixed with
 * {@code [rank R] }. {@link PrintStream#println(String)} holds the stream's lock for the whole
 * line, so the ranks' lines interleave but never mix.
 */
final class PrefixedOutput {

    private PrefixedOutput() {
    }

    /** Starts copying {@code from} to {@code to} on a new thread; the thread ends at end of stream. */
    static Thread start(InputStream from, PrintStream to, String prefix) {
        return Thread.ofPlatform().daemon().name(prefix.strip() + " output").start(() -> copy(from, to, prefix));
    }

    static void copy(InputStream from, PrintStream to, String prefix) {
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(from, StandardCharsets.UTF_8))) {
            String line;
            while ((line = lines.readLine()) != null) {
                to.println(prefix + line);
            }
        } catch (IOException e) {
            // The child is gone and its pipe closed under us: nothing more to copy.
        }
    }
}
