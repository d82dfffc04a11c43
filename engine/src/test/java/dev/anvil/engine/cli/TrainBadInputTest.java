package dev.anvil.engine.cli;

import dev.anvil.engine.checkpoint.Checksums;
import dev.anvil.engine.data.TokenShard;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.ModelWeights;
import dev.anvil.engine.io.TensorDtype;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.DivergingWeights;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.model.ParameterLayout;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad inputs to {@code anvil train}: each fails with one line on stderr that says what is wrong
 * (no stack trace) and a non-zero exit, and leaves every checkpoint already saved as it was.
 */
class TrainBadInputTest {

    @TempDir
    static Path shared;

    /** A --save-dir holding tiny checkpoints of steps 1 and 2. */
    private static Path saved;
    private static Path shard;

    @TempDir
    Path dir;

    private Map<String, String> before;

    @BeforeAll
    static void trainTwoSteps() throws IOException {
        shard = shared.resolve("tokens.bin");
        Cli.writeRandomShard(shard, 4000, 256);
        saved = shared.resolve("saved");
        Cli.ok(tiny(saved, "--steps", "2", "--save-every", "1"));
        assertTrue(Files.isDirectory(saved.resolve("step_00000001")));
        assertTrue(Files.isDirectory(saved.resolve("step_00000002")));
    }

    @BeforeEach
    void rememberChecksums() throws IOException {
        before = Cli.checksums(saved);
    }

    @AfterEach
    void savedCheckpointsAreUntouched() throws IOException {
        assertEquals(before, Cli.checksums(saved), "a failing run changed " + saved);
    }

    /** A short run of the tiny preset, unless {@code more} names a preset or --init-from. */
    private static String[] tiny(Path saveDir, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--data", shard.toString(), "--batch-size", "2",
                "--seq-len", "16", "--eval-every", "0", "--save-dir", saveDir.toString()));
        args.addAll(List.of(more));
        if (!args.contains("--preset") && !args.contains("--init-from")) {
            args.addAll(List.of("--preset", "tiny"));
        }
        return args.toArray(String[]::new);
    }


    /** Runs anvil, expecting it to fail with one line on stderr containing {@code expected}; returns the line. */
    private static String fails(String expected, String... args) {
        Cli.Run run = Cli.run(args);
        assertNotEquals(0, run.exit(), run.transcript());
        String err = run.err().strip();
        assertFalse(err.isEmpty(), run.transcript());
        assertFalse(err.contains("\n"), "more than one line on stderr:\n" + run.transcript());
        assertTrue(err.startsWith("anvil train: error: "), run.transcript());
        assertFalse(err.contains("Exception") || err.contains("\tat "), "a stack trace or exception name:\n"
                + run.transcript());
        assertTrue(err.contains(expected), "expected '" + expected + "' in:\n" + run.transcript());
        return err;
    }

    /** Replaces a checkpoint's weights and its checksum list to match, as if it had been saved with them. */
    private static void resave(Path checkpoint, float[] params) throws IOException {
        ModelWeights old = HfModelFiles.load(checkpoint);
        HfModelFiles.save(checkpoint, old.config(), params, TensorDtype.F32);
        Path list = checkpoint.resolve(Checksums.FILE);
        StringBuilder sums = new StringBuilder();
        for (String line : Files.readAllLines(list)) {
            String name = line.substring(line.indexOf("  ") + 2);
            sums.append(Checksums.sha256(checkpoint.resolve(name))).append("  ").append(name).append('\n');
        }
        Files.writeString(list, sums);
    }

    private static void truncate(Path file, long size) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.truncate(size);
        }
    }

    @Test
    void shardWithBadMagicIsRejected() throws IOException {
        Path bad = dir.resolve("bad.bin");
        Files.copy(shard, bad);
        try (RandomAccessFile file = new RandomAccessFile(bad.toFile(), "rw")) {
            file.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(12345).array());
        }
        fails("bad magic 12345 (expected " + TokenShard.MAGIC + ")",
                "train", "--data", bad.toString(), "--steps", "2", "--save-dir", saved.toString(), "--resume");
    }

    @Test
    void initFromTruncatedCheckpointIsRejected() throws IOException {
        Path copy = dir.resolve("step_00000002");
        Cli.copyTree(saved.resolve("step_00000002"), copy);
        truncate(copy.resolve(HfModelFiles.WEIGHTS_FILE), 1000);
        fails("truncated", tiny(dir.resolve("run"), "--steps", "3", "--init-from", copy.toString()));
        assertFalse(Files.exists(dir.resolve("run")), "nothing should be saved");
    }

    @Test
    void initFromWeightsHoldingNanOrInfinityIsRefusedNamingTheTensor() throws IOException {
        ModelWeights good = HfModelFiles.load(saved.resolve("step_00000002"));
        int wpe = (int) ParameterLayout.of(good.config()).tensor("transformer.wpe.weight").offset();
        for (float poison : new float[] {Float.NaN, Float.NEGATIVE_INFINITY}) {
            float[] params = good.params().clone();
            params[wpe + 5] = poison;
            Path model = dir.resolve("model-" + poison);
            HfModelFiles.save(model, good.config(), params, TensorDtype.F32);
            Path run = dir.resolve("run-" + poison);
            fails("tensor 'transformer.wpe.weight' holds 1 non-finite value (" + poison + ")",
                    tiny(run, "--steps", "1", "--init-from", model.toString()));
            assertFalse(Files.exists(run), "nothing should be saved");
        }
    }

    @Test
    void aFiniteLossWithNonFiniteGradientsStopsNamingTheStepAndLeavesTheLastCheckpointUntouched() throws IOException {
        Path run = dir.resolve("run");
        Cli.copyTree(saved, run);
        Path last = run.resolve("step_00000002");
        ModelWeights weights = HfModelFiles.load(last);
        resave(last, DivergingWeights.finiteLossInfiniteGradientNorm(weights.config(), weights.params()));
        Map<String, String> good = Cli.checksums(run);

        String err = fails("step 3: loss ", tiny(run, "--steps", "4", "--save-every", "1", "--resume"));
        Matcher m = Pattern.compile("step 3: loss (\\S+), gradient norm (\\S+): training diverged").matcher(err);
        assertTrue(m.find(), err);
        assertTrue(Float.isFinite(Float.parseFloat(m.group(1))), "the loss should be finite: " + err);
        assertFalse(Float.isFinite(Float.parseFloat(m.group(2))), err);
        assertTrue(err.endsWith("; the last good checkpoint, " + last + ", is untouched"), err);
        assertEquals(good, Cli.checksums(run), "no checkpoint of the diverged step, none changed");
    }

    @Test
    void resumeSkipsCorruptNewestCheckpointInFavourOfOlderValidOne() throws IOException {
        Path run = dir.resolve("run");
        Cli.copyTree(saved, run);
        Path corrupt = run.resolve("step_00000002").resolve(HfModelFiles.WEIGHTS_FILE);
        truncate(corrupt, Files.size(corrupt) / 2);
        Map<String, String> older = Cli.checksums(run.resolve("step_00000001"));
        Cli.Run resumed = Cli.ok(tiny(run, "--steps", "2", "--save-every", "0", "--resume"));
        String all = resumed.out() + resumed.err();
        assertTrue(all.contains("warning: skipping checkpoint " + run.resolve("step_00000002")), resumed.transcript());
        assertTrue(all.contains("does not match its checksum"), resumed.transcript());
        assertTrue(resumed.out().contains("resuming from " + run.resolve("step_00000001") + " after step 1"),
                resumed.transcript());
        assertEquals(older, Cli.checksums(run.resolve("step_00000001")), "the checkpoint resumed from changed");
        // Step 2 was redone and saved again, replacing the corrupt copy with a complete one.
        assertEquals(Cli.checksums(saved.resolve("step_00000002")).keySet(),
                Cli.checksums(run.resolve("step_00000002")).keySet());
    }

    @Test
    void resumeWhenEveryCheckpointIsCorruptFailsInsteadOfStartingOver() throws IOException {
        Path run = dir.resolve("run");
        Cli.copyTree(saved, run);
        for (String step : List.of("step_00000001", "step_00000002")) {
            Path weights = run.resolve(step).resolve(HfModelFiles.WEIGHTS_FILE);
            truncate(weights, Files.size(weights) / 2);
        }
        Map<String, String> corrupt = Cli.checksums(run);
        fails("no valid checkpoint", tiny(run, "--steps", "3", "--resume"));
        assertEquals(corrupt, Cli.checksums(run), "the corrupt checkpoints must be left for the user to inspect");
    }

    @Test
    void initFromTinyCheckpointWithAnotherPresetIsRejected() {
        String err = fails("--preset gpt2-124m", tiny(dir.resolve("run"), "--steps", "1",
                "--init-from", saved.resolve("step_00000002").toString(), "--preset", "gpt2-124m"));
        assertTrue(err.contains("L=2, C=64"), err);
    }

    @Test
    void resumeIntoSaveDirHoldingAnotherShapeIsRejected() throws IOException {
        // A checkpoint of a model one layer deep, saved where a tiny run then tries to resume.
        GptConfig other = GptConfig.of(1, 32, 2, 16, 512);
        Path model = dir.resolve("other-model");
        try (CpuBackend backend = new CpuBackend(1); GptModel gpt = new GptModel(backend, other)) {
            gpt.initialize(1);
            HfModelFiles.save(model, other, gpt.readParameters(), TensorDtype.F32);
        }
        Path run = dir.resolve("run");
        Cli.ok(tiny(run, "--steps", "1", "--init-from", model.toString()));
        Map<String, String> theirs = Cli.checksums(run);
        String err = fails("step_00000001", tiny(run, "--steps", "2", "--preset", "tiny", "--resume"));
        assertTrue(err.contains("shape") || err.contains("missing tensor"), err);
        assertEquals(theirs, Cli.checksums(run));
    }

    @Test
    void resumeThatWouldReadOtherTokensPerStepIsRejected() {
        String err = fails("--grad-accum 1 x --batch-size 2 x --seq-len 16 = 32 tokens per step; this run has 64",
                tiny(saved, "--steps", "3", "--grad-accum", "2", "--resume"));
        assertTrue(err.contains("e.g. half the --batch-size on twice the ranks"), err);
    }

    @Test
    void zeroStagesBeyondOneAreRejected() {
        fails("--zero must be 0 or 1 (stages 2 and 3 are not supported), got 2", tiny(saved, "--steps", "3",
                "--zero", "2", "--resume"));
    }

    @Test
    void missingDataPathIsRejected() {
        String err = fails("/no/such/file", "train", "--data", "/no/such/file", "--steps", "1",
                "--save-dir", saved.toString(), "--resume");
        assertEquals(err.indexOf("no such file"), err.lastIndexOf("no such file"), "said twice: " + err);
    }

    @Test
    void negativeBatchSizeIsRejected() {
        fails("--batch-size must be positive, got -1", "train", "--data", shard.toString(), "--batch-size", "-1",
                "--seq-len", "16", "--steps", "1", "--save-dir", saved.toString(), "--resume");
    }
}
