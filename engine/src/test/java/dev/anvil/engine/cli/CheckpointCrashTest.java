package dev.anvil.engine.cli;

import dev.anvil.engine.checkpoint.Checkpointer;
import dev.anvil.engine.io.HfModelFiles;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A checkpoint write killed at any point leaves the newest complete checkpoint to resume from, a corrupted one is
 * caught by its checksums, and {@code --keep-last} keeps exactly that many. The kill is a test hook in the writer
 * that halts the JVM at a named point, as {@code kill -9} would, so each point is hit deterministically.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class CheckpointCrashTest {

    @TempDir
    static Path dir;

    private static Path shard;

    @BeforeAll
    static void writeData() throws IOException {
        shard = dir.resolve("tokens.bin");
        Cli.writeRandomShard(shard, 4000, 256);
    }

    private static List<String> tiny(Path saveDir, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--preset", "tiny", "--data", shard.toString(),
                "--batch-size", "2", "--seq-len", "16", "--eval-every", "0", "--threads", "1", "--save-dir",
                saveDir.toString()));
        args.addAll(List.of(more));
        return args;
    }

    /**
     * Saves at steps 2, 4 and 6, keeping the last one; the writer of step 4 is killed at {@code point}. Before the
     * rename the newest valid checkpoint is step 2; from the rename on it is step 4 (its pruning of step 2 may not
     * have happened, or only half). Resuming continues from there, and leaves only step 6.
     */
    @ParameterizedTest(name = "killed at {0}")
    @CsvSource({"weights, 2", "optimizer, 2", "checksums, 2", "renamed, 4", "pruning, 4"})
    void aKillDuringACheckpointWriteLeavesTheNewestValidCheckpointToResumeFrom(String point, int newest)
            throws Exception {
        Path run = dir.resolve(point);
        Path log = dir.resolve(point + ".log");
        List<String> train = tiny(run, "--steps", "6", "--save-every", "2", "--keep-last", "1");
        Process child = Cli.start(log, Map.of(), List.of("-D" + Checkpointer.HALT_PROPERTY + "=" + point + "@4"), train);
        if (!child.waitFor(2, TimeUnit.MINUTES)) {
            child.destroyForcibly();
            fail("the trainer did not halt while writing step 4:\n" + Files.readString(log));
        }
        assertEquals(137, child.exitValue(), Files.readString(log));

        Path expected = run.resolve(String.format("step_%08d", newest));
        assertEquals(Optional.of(expected), new Checkpointer(run, 0).latestValid(w -> fail(w + " after " + point)));
        List<String> resume = new ArrayList<>(train);
        resume.add("--resume");
        Cli.Run resumed = Cli.ok(resume.toArray(String[]::new));
        assertTrue(resumed.out().contains("resuming from " + expected + " after step " + newest), resumed.transcript());
        assertEquals(List.of("step_00000006"), entries(run), "one checkpoint kept, and nothing the kill left");
    }

    @Test
    void aBitFlippedInTheNewestWeightsIsCaughtByTheChecksumsAndKeepLastKeepsExactlyThatMany() throws IOException {
        Path run = dir.resolve("flip");
        Cli.ok(tiny(run, "--steps", "4", "--save-every", "1", "--keep-last", "2").toArray(String[]::new));
        assertEquals(List.of("step_00000003", "step_00000004"), entries(run));

        Path weights = run.resolve("step_00000004").resolve(HfModelFiles.WEIGHTS_FILE);
        long size = Files.size(weights);
        try (RandomAccessFile file = new RandomAccessFile(weights.toFile(), "rw")) {
            file.seek(size - 3); // a low mantissa byte of the last weight: the model still loads, only the sum knows
            int b = file.read();
            file.seek(size - 3);
            file.write(b ^ 1);
        }
        assertEquals(size, Files.size(weights));

        Cli.Run resumed = Cli.ok(tiny(run, "--steps", "5", "--save-every", "1", "--keep-last", "2", "--resume")
                .toArray(String[]::new));
        assertTrue(resumed.out().contains("warning: skipping checkpoint " + run.resolve("step_00000004") + ": "
                + HfModelFiles.WEIGHTS_FILE + " does not match its checksum"), resumed.transcript());
        assertTrue(resumed.out().contains("resuming from " + run.resolve("step_00000003") + " after step 3"),
                resumed.transcript());
        // Step 4 was recomputed and saved again over the corrupt copy, then step 5; the two newest are kept.
        assertEquals(List.of("step_00000004", "step_00000005"), entries(run));
        assertEquals(Optional.of(run.resolve("step_00000005")), new Checkpointer(run, 0).latestValid(w -> fail(w)));
    }

    /** Every name in {@code dir}, hidden ones included, sorted. */
    private static List<String> entries(Path dir) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
