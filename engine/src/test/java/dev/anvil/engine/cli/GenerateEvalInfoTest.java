package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.data.DefaultCorpus;
import dev.anvil.engine.data.Tokenizer;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.ModelWeights;
import dev.anvil.engine.io.TensorDtype;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.ParameterLayout;
import dev.anvil.engine.model.ReferenceGpt64;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code generate}, {@code eval} and {@code info} on a checkpoint that {@code train} made from the default corpus. */
class GenerateEvalInfoTest {

    @TempDir
    static Path dir;

    private static Path run;
    private static Path checkpoint;

    @BeforeAll
    static void trainOnTheDefaultCorpus() {
        run = dir.resolve("run");
        Cli.Run trained = Cli.ok("train", "--preset", "tiny", "--steps", "3", "--batch-size", "2", "--seq-len", "32", "--eval-every", "0",
                "--save-dir", run.toString());
        checkpoint = run.resolve("step_00000003");
        assertTrue(Files.isDirectory(checkpoint), trained.transcript());
        // Trained on the embedded corpus, the run ends with a sample of its text.
        String sample = trained.out().substring(trained.out().indexOf("done: 3 steps"));
        assertTrue(sample.matches("(?s)done: 3 steps[^\\n]*\\nsample \\(more: bin/anvil generate -c \\S+step_00000003\\):\\n.+"),
                trained.transcript());
    }

    @Test
    void generatePrintsTextFromTheCheckpoint() {
        Cli.Run generated = Cli.ok("generate", "--checkpoint", checkpoint.toString(), "--prompt", "The ",
                "--max-tokens", "30", "--seed", "3");
        String text = generated.out();
        assertTrue(text.startsWith("The "), generated.transcript());
        assertTrue(text.endsWith("\n"), generated.transcript());
        assertFalse(text.substring("The ".length()).isBlank(), "nothing generated:\n" + generated.transcript());
    }

    @Test
    void generatePrintsTextThatEndsInAnIncompleteCharacter() throws IOException {
        // A model whose every logit but byte 0xC3's is zero: greedy decoding emits 0xC3, the first
        // byte of a two-byte UTF-8 character, again and again, so the text always ends incomplete.
        GptConfig shape = GptConfig.of(1, 32, 2, 16, 512);
        ParameterLayout layout = ParameterLayout.of(shape);
        float[] params = new float[(int) layout.totalSize()];
        int wte = (int) layout.tensor("transformer.wte.weight").offset();
        int lnfBias = (int) layout.tensor("transformer.ln_f.bias").offset();
        for (int c = 0; c < shape.channels(); c++) {
            params[wte + 0xC3 * shape.channels() + c] = 1f;
            params[lnfBias + c] = 1f;
        }
        Path model = dir.resolve("c3-model");
        HfModelFiles.save(model, shape, params, TensorDtype.F32);
        Cli.Run generated = Cli.ok("generate", "--checkpoint", model.toString(), "--temperature", "0",
                "--max-tokens", "5");
        assertEquals("\uFFFD".repeat(5) + "\n", generated.out(), generated.transcript());
    }

    /**
     * {@code eval} without {@code --data} averages the loss over the embedded corpus's held-out batches 0, 1, ...:
     * the float64 reference, fed the same weights and batches, must find the same mean. The tolerance covers fp32
     * rounding (measured: 2e-9 relative, as the mean is taken in double) and is far below what evaluating other
     * batches, the training split or a wrong average would change.
     */
    @Test
    void evalPrintsTheLossTheFloat64ReferenceFindsOnTheSameValidationBatches() throws IOException {
        int batches = 2, b = 2, t = 32;
        Cli.Run evaluated = Cli.ok("eval", "--checkpoint", checkpoint.toString(), "--batches", Integer.toString(batches),
                "--batch-size", Integer.toString(b), "--seq-len", Integer.toString(t));
        JsonNode json = Cli.JSON.readTree(evaluated.out());
        assertTrue(json.get("loss").isNumber(), evaluated.transcript());
        assertEquals((long) batches * b * t, json.get("tokens").asLong());

        ModelWeights weights = HfModelFiles.load(checkpoint);
        ReferenceGpt64 reference = new ReferenceGpt64(weights.config());
        double[] params = ReferenceGpt64.toDouble(weights.params());
        DataLoader validation = new DataLoader(DefaultCorpus.load(Tokenizer.bytes()).val(), b, t, 0, 1);
        int[] inputs = new int[b * t];
        int[] targets = new int[b * t];
        double sum = 0;
        for (int i = 0; i < batches; i++) {
            validation.load(i, inputs, targets);
            sum += reference.loss(params, inputs, targets, b, t);
        }
        double expected = sum / batches;
        assertEquals(expected, json.get("loss").asDouble(), 1e-6 * expected, evaluated.transcript());
    }

    @Test
    void evalAndGenerateOfASaveDirUseItsNewestCheckpoint() {
        for (String[] command : new String[][] {{"eval", "--batches", "2", "--batch-size", "2", "--seq-len", "32"},
                {"generate", "--max-tokens", "20"}}) {
            assertEquals(Cli.ok(on(checkpoint, command)).out(), Cli.ok(on(run, command)).out(), command[0]);
        }
    }

    private static String[] on(Path dir, String... command) {
        List<String> args = new ArrayList<>(List.of(command));
        args.addAll(List.of("-c", dir.toString()));
        return args.toArray(String[]::new);
    }

    @Test
    void infoDescribesACheckpointASaveDirAndAShard() throws IOException {
        JsonNode ckpt = Cli.JSON.readTree(Cli.ok("info", checkpoint.toString()).out());
        assertEquals("training checkpoint", ckpt.get("kind").asText());
        assertEquals(3, ckpt.get("state").get("step").asInt());
        assertEquals(64, ckpt.get("config").get("channels").asInt());
        assertTrue(ckpt.get("parameters").asLong() > 0);

        JsonNode saveDir = Cli.JSON.readTree(Cli.ok("info", run.toString()).out());
        assertEquals("checkpoint directory", saveDir.get("kind").asText());
        assertEquals("step_00000003", saveDir.get("checkpoints").get(0).asText());

        Path text = dir.resolve("text.txt");
        Files.writeString(text, Cli.words(1, 5_000));
        Cli.ok("prepare", text.toString(), "--out", dir.resolve("shards").toString(), "--tokenizer", "bytes");
        Path shard = dir.resolve("shards").resolve("train_000000.bin");
        JsonNode info = Cli.JSON.readTree(Cli.ok("info", shard.toString()).out());
        assertEquals("token shard", info.get("kind").asText());
        assertEquals((Files.size(shard) - 1024) / 2, info.get("tokens").asLong());
    }
}
