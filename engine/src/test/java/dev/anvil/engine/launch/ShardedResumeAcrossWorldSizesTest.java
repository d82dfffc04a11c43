package dev.anvil.engine.launch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.anvil.engine.cli.Cli;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train --zero 1} saves its optimizer state as one shard per rank, and a run resumes from it on
 * another number of ranks (2 → 4 → 1 here, keeping 4 sequences per step) with the losses of a run
 * that was never interrupted.
 *
 * <p>Not bit for bit: the uninterrupted run is one rank with batch 4, and the parts run 2 ranks of
 * batch 2 and 4 of batch 1, whose mean gradients are summed in other orders. They agree to 1.2e-7
 * relative (one float ulp); a reshard that misplaced even a small part of the moments would move the
 * losses by far more than the 1e-6 allowed.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ShardedResumeAcrossWorldSizesTest {

    private static final int STEPS = 6;

    @TempDir
    Path dir;

    /** {@code train} on the embedded corpus with {@code batch} sequences per rank, saving every 2 steps. */
    private List<String> train(int batch, int steps, String run, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--steps", Integer.toString(steps), "--batch-size",
                Integer.toString(batch), "--seq-len", "32", "--threads", "1", "--eval-every", "0", "--lr-schedule",
                "constant", "--warmup-steps", "2", "--lr", "3e-3", "--save-every", "2",
                "--save-dir", dir.resolve(run).toString(), "--metrics-out", dir.resolve(run + ".jsonl").toString()));
        args.addAll(List.of(more));
        return args;
    }

    /** Runs {@code args} under the launcher, in child JVMs; returns what they printed. */
    private String launch(String name, int ranks, List<String> command) throws Exception {
        List<String> args = new ArrayList<>(List.of("launch", "--nproc-per-node", Integer.toString(ranks), "--"));
        args.addAll(command);
        Path log = dir.resolve(name + ".log");
        int exit = Jvm.await(Jvm.start(log, Map.of(), args), 150, log);
        String output = Files.readString(log);
        assertEquals(0, exit, output);
        return output;
    }

    /** Runs one rank in this JVM (saving the start of two more); returns what it printed. */
    private static String inProcess(List<String> args) {
        Cli.Run run = Cli.run(args.toArray(String[]::new));
        assertEquals(0, run.exit(), run.transcript());
        return run.out();
    }

    @Test
    void aShardedCheckpointResumesOnTwiceAndThenOnAQuarterOfTheRanksWithTheUninterruptedLosses() throws Exception {
        inProcess(train(4, STEPS, "reference"));
        List<JsonNode> expected = Jvm.metrics(dir.resolve("reference.jsonl"));
        assertEquals(STEPS, expected.size());

        launch("two", 2, train(2, 2, "resharded", "--zero", "1"));
        Path two = dir.resolve("resharded/step_00000002");
        assertTrue(Files.exists(two.resolve("optimizer.index.json")), "a sharded checkpoint has an index");
        assertTrue(Files.exists(two.resolve("optimizer-00001-of-00002.safetensors")), "and a file per rank");
        assertFalse(Files.exists(two.resolve("optimizer.safetensors")), "and no whole optimizer state");

        String four = launch("four", 4, train(1, 4, "resharded", "--zero", "1", "--resume"));
        assertTrue(four.contains("resuming from " + two + " after step 2"), four);
        assertTrue(four.contains("optimizer state sharded (ZeRO-1)"), four);
        assertTrue(four.matches("(?s).*memory per rank: parameters .*, optimizer state .*"), four);
        assertTrue(Files.exists(dir.resolve("resharded/step_00000004/optimizer-00003-of-00004.safetensors")));

        String one = inProcess(train(4, STEPS, "resharded", "--resume"));
        assertTrue(one.contains("resuming from " + dir.resolve("resharded/step_00000004") + " after step 4"), one);

        List<JsonNode> lines = Jvm.metrics(dir.resolve("resharded.jsonl"));
        assertEquals(STEPS, lines.size());
        for (int i = 0; i < STEPS; i++) {
            assertEquals(i + 1, lines.get(i).get("step").asInt());
            double want = expected.get(i).get("loss").asDouble();
            assertEquals(want, lines.get(i).get("loss").asDouble(), 1e-6 * want, "loss of step " + (i + 1));
            double norm = expected.get(i).get("grad_norm").asDouble();
            assertEquals(norm, lines.get(i).get("grad_norm").asDouble(), 1e-6 * norm, "gradient norm of step " + (i + 1));
        }
    }
}
