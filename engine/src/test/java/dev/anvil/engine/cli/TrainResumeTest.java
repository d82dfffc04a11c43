package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.anvil.engine.checkpoint.Checkpointer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The trainer a user runs, end to end: text is prepared into shards and trained on; a run stopped by
 * SIGTERM or SIGINT (Ctrl-C), or killed outright between checkpoints, and then resumed must produce
 * exactly the per-step losses (and learning rates and gradient norms) of a run that was never
 * interrupted.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class TrainResumeTest {

    /** Enough steps that a signal sent after the first few lands well before the end. */
    private static final int STEPS = 60;
    private static final int SAVE_EVERY = 4;

    @TempDir
    static Path dir;

    private String data;
    private List<JsonNode> reference;

    @BeforeAll
    void prepareDataAndTrainUninterrupted() throws IOException {
        Path text = dir.resolve("words.txt");
        Files.writeString(text, Cli.words(7, 300_000), StandardCharsets.UTF_8);
        Cli.Run prepared = Cli.ok("prepare", text.toString(), "--out", dir.resolve("shards").toString(),
                "--tokenizer", "bytes", "--threads", "1");
        assertTrue(Files.exists(dir.resolve("shards/train_000000.bin")), prepared.transcript());
        data = dir.resolve("shards").toString() + "/train_*.bin";

        Path metrics = dir.resolve("reference.jsonl");
        Cli.ok(trainArgs("reference", metrics));
        reference = Cli.metrics(metrics);
        assertEquals(STEPS, reference.size());
        for (int i = 0; i < STEPS; i++) {
            assertEquals(i + 1, reference.get(i).get("step").asInt());
        }
    }

    private String[] trainArgs(String run, Path metrics, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--preset", "tiny", "--data", data, "--steps", Integer.toString(STEPS),
                "--batch-size", "4", "--seq-len", "32", "--save-every", Integer.toString(SAVE_EVERY),
                "--eval-every", "0", "--save-dir", dir.resolve(run).toString(), "--metrics-out", metrics.toString()));
        args.addAll(List.of(more));
        return args.toArray(String[]::new);
    }

    /** SIGTERM, as a scheduler's preemption sends, and SIGINT, as Ctrl-C does: the same clean stop. */
    @ParameterizedTest(name = "SIG{0}")
    @ValueSource(strings = {"TERM", "INT"})
    void aStopSignalSavesAtTheStepReachedAndTheResumedRunMatchesTheUninterruptedOneExactly(String signal)
            throws Exception {
        String run = "sig" + signal.toLowerCase(Locale.ROOT);
        Path metrics = dir.resolve(run + ".jsonl");
        Path log = dir.resolve(run + ".log");
        Process child = Cli.start(log, trainArgs(run, metrics));
        awaitSteps(child, metrics, 3, log);
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(child.pid())).inheritIO().start();
        assertEquals(0, kill.waitFor(), "kill -" + signal);
        assertTrue(child.waitFor(5, TimeUnit.MINUTES), "the trainer did not stop after SIG" + signal);
        String output = Files.readString(log);
        assertEquals(0, child.exitValue(), output);

        List<JsonNode> before = Cli.metrics(metrics);
        int reached = before.getLast().get("step").asInt();
        assertTrue(reached < STEPS, "the run finished before SIGTERM landed: " + output);
        Path saveDir = dir.resolve(run);
        Path expected = saveDir.resolve(String.format("step_%08d", reached));
        assertTrue(output.contains("stopped by SIG" + signal + " after step " + reached + "; saved " + expected), output);
        assertEquals(Optional.of(expected), new Checkpointer(saveDir, 0).latestValid(w -> fail(w)),
                "the newest valid checkpoint should be the one at the step reached");
        assertEquals(reached, Checkpointer.readState(expected).step());

        // The printed resume command must work as printed.
        Matcher resume = Pattern.compile("(?m)^resume with: (.*)$").matcher(output);
        assertTrue(resume.find(), output);
        List<String> words = Cli.shellWords(resume.group(1));
        assertEquals(List.of("bin/anvil", "train"), words.subList(0, 2), resume.group(1));
        assertEquals(List.of(trainArgs(run, metrics, "--resume")), words.subList(1, words.size()));
        Cli.Run resumed = Cli.ok(words.subList(1, words.size()).toArray(String[]::new));
        assertTrue(resumed.out().contains("resuming from " + expected + " after step " + reached), resumed.transcript());

        List<JsonNode> all = Cli.metrics(metrics);
        assertEquals(STEPS, all.size(), "every step once: none skipped or repeated");
        assertSameAsReference(all);
    }

    @Test
    void killBetweenCheckpointsResumesFromTheLastCheckpointAndRecomputesTheSameLosses() throws Exception {
        Path metrics = dir.resolve("killed.jsonl");
        Path log = dir.resolve("killed.log");
        Process child = Cli.start(log, trainArgs("killed", metrics));
        awaitSteps(child, metrics, SAVE_EVERY + 1, log);
        awaitCheckpoint(child, dir.resolve("killed"), SAVE_EVERY, log); // written in the background
        child.destroyForcibly(); // SIGKILL: no handler runs, no checkpoint is written
        assertTrue(child.waitFor(2, TimeUnit.MINUTES));
        assertEquals(137, child.exitValue(), Files.readString(log));

        List<JsonNode> before = Cli.metrics(metrics);
        int reached = before.getLast().get("step").asInt();
        assertTrue(reached < STEPS, "the run finished before it was killed");
        Path saveDir = dir.resolve("killed");
        // The kill lands between checkpoints (normally after step 5 of 4, 8, ...): the newest complete
        // checkpoint is the last multiple of SAVE_EVERY at or before the step reached.
        Optional<Path> latest = new Checkpointer(saveDir, 0).latestValid(w -> fail(w));
        assertTrue(latest.isPresent(), "no checkpoint after " + reached + " steps");
        int restart = Checkpointer.readState(latest.get()).step();
        assertEquals(0, restart % SAVE_EVERY);
        assertTrue(restart <= reached && restart > reached - 2 * SAVE_EVERY, restart + " vs " + reached);

        Cli.Run resumed = Cli.ok(trainArgs("killed", metrics, "--resume"));
        assertTrue(resumed.out().contains("resuming from " + latest.get() + " after step " + restart),
                resumed.transcript());

        // The resumed run replaces the killed run's lines after its checkpoint: every step once, and
        // the steps between the checkpoint and the kill recomputed identically.
        assertSameAsReference(before);
        List<JsonNode> all = Cli.metrics(metrics);
        List<Integer> steps = all.stream().map(n -> n.get("step").asInt()).toList();
        assertEquals(IntStream.rangeClosed(1, STEPS).boxed().toList(), steps);
        assertSameAsReference(all);
    }

    /**
     * Each line's loss, learning rate and gradient norm are bit for bit the uninterrupted run's: the
     * CPU kernels give the same bits whether the JIT has compiled them yet or not, so a fresh JVM
     * resuming mid-run repeats what the warmed-up one computed.
     */
    private void assertSameAsReference(List<JsonNode> lines) {
        for (JsonNode line : lines) {
            int step = line.get("step").asInt();
            JsonNode ref = reference.get(step - 1);
            assertEquals(ref.get("lr").asText(), line.get("lr").asText(), "step " + step + " lr");
            for (String field : List.of("loss", "grad_norm")) {
                assertEquals(ref.get(field).asText(), line.get(field).asText(), "step " + step + " " + field);
            }
        }
    }

    /** Polls until the checkpoint of {@code step} is complete; fails if the child exits first. */
    private static void awaitCheckpoint(Process child, Path saveDir, int step, Path log) throws Exception {
        Path sums = new Checkpointer(saveDir, 0).pathFor(step).resolve("checksums.sha256");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!Files.exists(sums)) {
            if (!child.isAlive() || System.nanoTime() > deadline) {
                child.destroyForcibly();
                fail("no checkpoint of step " + step + ":\n" + Files.readString(log));
            }
            Thread.sleep(5);
        }
    }

    /** Polls the metrics file until it shows {@code steps} steps; fails if the child exits first. */
    private static void awaitSteps(Process child, Path metrics, int steps, Path log) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (Cli.metrics(metrics).size() < steps) {
            if (!child.isAlive()) {
                fail("the trainer exited (" + child.exitValue() + ") before step " + steps + ":\n"
                        + Files.readString(log));
            }
            if (System.nanoTime() > deadline) {
                child.destroyForcibly();
                fail("no step " + steps + " within 3 minutes:\n" + Files.readString(log));
            }
            Thread.sleep(5);
        }
    }
}
