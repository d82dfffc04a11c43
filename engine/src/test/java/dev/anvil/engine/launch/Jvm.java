package dev.anvil.engine.launch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.anvil.engine.cli.Cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.fail;

/** Starts {@code anvil} in child JVMs (through {@link Cli#start}), and watches what they leave behind. */
final class Jvm {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Jvm() {
    }

    /** {@code anvil args...} in a child JVM on this test's class path; stdout and stderr go to {@code log}. */
    static Process start(Path log, Map<String, String> env, List<String> args) throws IOException {
        return Cli.start(log, env, List.of(), args);
    }

    /** {@code train} on the embedded corpus: the tiny model, small batches, one CPU thread per rank. */
    static List<String> train(int steps, Path saveDir, Path metrics, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--preset", "tiny", "--steps", Integer.toString(steps), "--batch-size", "2",
                "--seq-len", "32", "--threads", "1", "--eval-every", "0", "--save-dir", saveDir.toString(),
                "--metrics-out", metrics.toString()));
        args.addAll(List.of(more));
        return args;
    }

    /** {@code launch --nproc-per-node 2 [more] -- command...}. */
    static List<String> launch2(List<String> command, String... more) {
        return launch(2, command, more);
    }

    /** {@code launch --nproc-per-node ranks [more] -- command...}. */
    static List<String> launch(int ranks, List<String> command, String... more) {
        List<String> args = new ArrayList<>(List.of("launch", "--nproc-per-node", Integer.toString(ranks)));
        args.addAll(List.of(more));
        args.add("--");
        args.addAll(command);
        return args;
    }

    /** The finished lines of a {@code --metrics-out} file; none if it does not exist yet. */
    static List<JsonNode> metrics(Path file) throws IOException {
        if (!Files.exists(file)) {
            return List.of();
        }
        String text = Files.readString(file, StandardCharsets.UTF_8);
        int end = text.lastIndexOf('\n'); // a line still being written has no newline yet
        List<JsonNode> lines = new ArrayList<>();
        if (end > 0) {
            for (String line : text.substring(0, end).split("\n")) {
                lines.add(JSON.readTree(line));
            }
        }
        return lines;
    }

    /** Polls the metrics file until it shows {@code steps} steps; fails if {@code child} exits first. */
    static void awaitSteps(Process child, Path metrics, int steps, Path log) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (metrics(metrics).size() < steps) {
            if (!child.isAlive()) {
                fail("exited (" + child.exitValue() + ") before step " + steps + ":\n" + Files.readString(log));
            }
            if (System.nanoTime() > deadline) {
                child.destroyForcibly();
                fail("no step " + steps + " within 2 minutes:\n" + Files.readString(log));
            }
            Thread.sleep(5);
        }
    }

    /** Waits for {@code child} to exit and returns its exit value; kills it and fails after {@code seconds}. */
    static int await(Process child, long seconds, Path log) throws Exception {
        if (!child.waitFor(seconds, TimeUnit.SECONDS)) {
            child.descendants().forEach(ProcessHandle::destroyForcibly);
            child.destroyForcibly();
            fail("still running after " + seconds + " s:\n" + Files.readString(log));
        }
        return child.exitValue();
    }

    /** The pid of {@code rank} from the launcher's first "started rank 0 pid N, ..." line, polling until it is there. */
    static long pidOf(Process launcher, Path log, int rank) throws Exception {
        Pattern started = Pattern.compile("anvil launch: started .*\\brank " + rank + " pid (\\d+)");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        while (System.nanoTime() < deadline && launcher.isAlive()) {
            Matcher m = started.matcher(Files.readString(log));
            if (m.find()) {
                return Long.parseLong(m.group(1));
            }
            Thread.sleep(5);
        }
        return fail("the launcher never said which pid runs rank " + rank + ":\n" + Files.readString(log));
    }
}
