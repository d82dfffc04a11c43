package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.anvil.engine.checkpoint.Checksums;
import dev.anvil.engine.data.ShardWriter;

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
import java.util.SplittableRandom;
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

    /**
     * Variables by which a launcher (torchrun, Slurm, {@code anvil launch}) or a developer's shell changes what
     * {@code anvil} does in this JVM: the ones it reads. Maven's test JVMs run without them (the surefire
     * configuration's {@code excludedEnvironmentVariables} lists the same names), so a test run inside a Slurm
     * allocation or a torchrun job does not try to join it.
     */
    public static final List<String> LAUNCHER_VARIABLES = List.of("RANK", "WORLD_SIZE", "LOCAL_RANK",
            "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
            "SLURM_JOB_NODELIST", "ANVIL_JOB_TOKEN", "ANVIL_JOB_TOKEN_FILE", "ANVIL_DEBUG");

    /** Prefixes of the variables a child JVM is started without: all of Slurm's, torchrun's and anvil's own. */
    private static final List<String> LAUNCHER_PREFIXES = List.of("SLURM_", "MASTER_", "ANVIL_", "TORCHELASTIC_");

    /** Removes from {@code env} every variable by which a launcher or shell would change what a child does. */
    public static void scrub(Map<String, String> env) {
        env.keySet().removeIf(name -> LAUNCHER_VARIABLES.contains(name)
                || LAUNCHER_PREFIXES.stream().anyMatch(name::startsWith));
    }

    /** The launcher variables this JVM has; none when the tests run through Maven. */
    static List<String> inheritedLauncherVariables() {
        return LAUNCHER_VARIABLES.stream().filter(name -> System.getenv(name) != null).toList();
    }

    /**
     * Runs {@code anvil args...} in this JVM with stdout and stderr captured.
     *
     * @throws AssertionError if this JVM has a launcher's variables, rather than letting {@code train} join
     *                        whatever job they describe
     */
    public static synchronized Run run(String... args) {
        List<String> inherited = inheritedLauncherVariables();
        if (!inherited.isEmpty()) {
            throw new AssertionError("this test JVM has " + inherited + ", which would make anvil join a data-parallel"
                    + " job: run the tests through Maven (its surefire configuration drops them) or unset them");
        }
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

    /** {@link #start(Path, Map, List, List)} with no extra variables or JVM options. */
    static Process start(Path log, String... args) throws IOException {
        return start(log, Map.of(), List.of(), List.of(args));
    }

    /**
     * Starts {@code anvil args...} in a child JVM on this test's class path, stdout and stderr going to
     * {@code log}. The child's environment is this JVM's {@linkplain #scrub scrubbed} of launcher variables, plus
     * {@code env}.
     *
     * @param jvmOptions options for the child's {@code java}, e.g. {@code -Dname=value}
     */
    public static Process start(Path log, Map<String, String> env, List<String> jvmOptions, List<String> args)
            throws IOException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), AnvilMain.class.getName()));
        command.addAll(args);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        scrub(builder.environment());
        builder.environment().putAll(env);
        return builder.start();
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

    /** Writes a shard of {@code count} tokens drawn uniformly from {@code [0, vocab)}, the same every time. */
    public static void writeRandomShard(Path file, int count, int vocab) throws IOException {
        SplittableRandom random = new SplittableRandom(3);
        try (ShardWriter writer = ShardWriter.create(file)) {
            for (int i = 0; i < count; i++) {
                writer.write(random.nextInt(vocab));
            }
            writer.commit();
        }
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
