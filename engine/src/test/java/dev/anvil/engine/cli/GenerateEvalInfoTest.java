package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.TensorDtype;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.ParameterLayout;
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

    @Test
    void evalPrintsJsonWithAFiniteLoss() throws IOException {
        Cli.Run evaluated = Cli.ok("eval", "--checkpoint", checkpoint.toString(), "--batches", "2",
                "--batch-size", "2", "--seq-len", "32");
        JsonNode json = Cli.JSON.readTree(evaluated.out());
        assertTrue(json.get("loss").isNumber(), evaluated.transcript());
        double loss = json.get("loss").asDouble();
        assertTrue(Double.isFinite(loss) && loss > 0 && loss < 10, evaluated.transcript());
        assertEquals(2 * 2 * 32, json.get("tokens").asLong());
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
