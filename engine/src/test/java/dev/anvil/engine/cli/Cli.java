package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.anvil.engine.checkpoint.Checksums;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;

/** Runs {@code anvil} in this JVM or in a child JVM, and reads what it leaves behind. */
public final class Cli {

    static final ObjectMapper JSON = new ObjectMapper();

    private Cli() {
    }

    /** What an in-process run printed and returned. */
    public record Run(int exit, String out, String err) {

        /** Both streams, for assertion messages. */
        public String transcript() {
            return "exit " + exit + "\n--- stdout:\n" + out + "--- stderr:\n" + err;
        }
    }

    /** Runs {@code anvil args...} in this JVM with stdout and stderr captured. */
    public static synchronized Run run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            System.setOut(o);
            System.setErr(e);
            exit = AnvilMain.run(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** Runs {@code anvil args...} in this JVM and fails unless it exits 0. */
    static Run ok(String... args) {
        Run run = run(args);
        if (run.exit() != 0) {
            throw new AssertionError("anvil " + String.join(" ", args) + " failed:\n" + run.transcript());
        }
        return run;
    }

    /**
     * Starts {@code anvil args...} in a child JVM on this test's class path, stdout and stderr
     * going to {@code log}.
     */
    static Process start(Path log, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), AnvilMain.class.getName()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    /** The lines of a {@code --metrics-out} file, as JSON; none if it does not exist yet. */
    static List<JsonNode> metrics(Path file) throws IOException {
        if (!Files.exists(file)) {
            return List.of();
        }
        List<JsonNode> lines = new ArrayList<>();
        String text = Files.readString(file, StandardCharsets.UTF_8);
        // A line still being written has no newline yet: only count finished ones.
        int end = text.lastIndexOf('\n');
        if (end < 0) {
            return List.of();
        }
        for (String line : text.substring(0, end).split("\n")) {
            lines.add(JSON.readTree(line));
        }
        return lines;
    }

    /** SHA-256 of every file under {@code dir}, by relative path. */
    static Map<String, String> checksums(Path dir) throws IOException {
        Map<String, String> sums = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.filter(Files::isRegularFile).toList()) {
                sums.put(dir.relativize(p).toString(), Checksums.sha256(p));
            }
        }
        return sums;
    }

    /** Copies a directory tree. */
    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> walk = Files.walk(from)) {
            for (Path p : walk.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }

    /** About {@code chars} characters of pseudo-random words in paragraphs, the same for the same seed. */
    static String words(long seed, int chars) {
        Random random = new Random(seed);
        String[] vocabulary = new String[200];
        for (int i = 0; i < vocabulary.length; i++) {
            StringBuilder w = new StringBuilder();
            int len = 2 + random.nextInt(8);
            for (int c = 0; c < len; c++) {
                w.append((char) ('a' + random.nextInt(26)));
            }
            vocabulary[i] = w.toString();
        }
        StringBuilder text = new StringBuilder(chars + 100);
        while (text.length() < chars) {
            int words = 20 + random.nextInt(80);
            for (int i = 0; i < words; i++) {
                // Zipf-like: small indices much more often, so there is something to learn.
                int index = (int) (vocabulary.length * Math.pow(random.nextDouble(), 3));
                text.append(i == 0 ? "" : " ").append(vocabulary[index]);
            }
            text.append(".\n\n");
        }
        return text.toString();
    }

    /** Splits a command line as a POSIX shell would for the quoting {@code TrainCommand} prints. */
    static List<String> shellWords(String line) {
        List<String> words = new ArrayList<>();
        StringBuilder word = null;
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quoted) {
                if (c == '\'') {
                    quoted = false;
                } else {
                    word.append(c);
                }
            } else if (c == '\'') {
                quoted = true;
                word = word == null ? new StringBuilder() : word;
            } else if (c == '\\' && i + 1 < line.length()) {
                word = word == null ? new StringBuilder() : word;
                word.append(line.charAt(++i));
            } else if (Character.isWhitespace(c)) {
                if (word != null) {
                    words.add(word.toString());
                    word = null;
                }
            } else {
                word = word == null ? new StringBuilder() : word;
                word.append(c);
            }
        }
        if (quoted) {
            throw new IllegalArgumentException("unterminated quote in: " + line);
        }
        if (word != null) {
            words.add(word.toString());
        }
        return words;
    }
}
