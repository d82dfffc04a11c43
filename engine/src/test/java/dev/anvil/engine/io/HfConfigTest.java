package dev.anvil.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.anvil.engine.model.GptConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfConfigTest {

    private static final GptConfig CONFIG = GptConfig.of(2, 32, 4, 16, 100);
    private static final ObjectMapper MAPPER = new ObjectMapper();

    @TempDir
    Path dir;

    private Path written() throws IOException {
        Path file = dir.resolve("config.json");
        HfConfig.write(file, CONFIG, TensorDtype.BF16);
        return file;
    }

    /** A written config.json changed by {@code edit}. */
    private Path edited(Consumer<ObjectNode> edit) throws IOException {
        Path file = written();
        ObjectNode json = (ObjectNode) MAPPER.readTree(file.toFile());
        edit.accept(json);
        MAPPER.writeValue(file.toFile(), json);
        return file;
    }

    private static void assertRefused(Path file, String... parts) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfConfig.read(file));
        assertTrue(e.getMessage().startsWith(file.toString()), "names the file: " + e.getMessage());
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }

    @Test
    void writesTheFieldsTransformersReads() throws IOException {
        JsonNode json = MAPPER.readTree(written().toFile());
        assertEquals("gpt2", json.get("model_type").textValue());
        assertEquals("[\"GPT2LMHeadModel\"]", json.get("architectures").toString());
        assertEquals(32, json.get("n_embd").intValue());
        assertEquals(2, json.get("n_layer").intValue());
        assertEquals(4, json.get("n_head").intValue());
        assertEquals(16, json.get("n_positions").intValue());
        assertEquals(16, json.get("n_ctx").intValue());
        assertEquals(100, json.get("vocab_size").intValue(), "the real vocabulary, not the padded one");
        assertEquals(1e-5, json.get("layer_norm_epsilon").doubleValue());
        assertEquals("gelu_new", json.get("activation_function").textValue());
        assertEquals("bfloat16", json.get("torch_dtype").textValue());
    }

    @Test
    void readsBackTheConfigWithItsVocabularyPadded() throws IOException {
        GptConfig back = HfConfig.read(written());
        assertEquals(CONFIG, back);
        assertEquals(128, back.paddedVocabSize());
    }

    @Test
    void appliesTransformersDefaultsForOptionalFields() throws IOException {
        Path file = edited(json -> {
            json.remove("layer_norm_epsilon");
            json.remove("activation_function");
            json.putNull("n_inner");
        });
        assertEquals(CONFIG, HfConfig.read(file));
    }

    @Test
    void refusesAnotherModelType() throws IOException {
        assertRefused(edited(json -> json.put("model_type", "llama")), "model_type", "llama");
    }

    @Test
    void refusesAMissingField() throws IOException {
        assertRefused(edited(json -> json.remove("n_head")), "missing field 'n_head'");
        assertRefused(edited(json -> json.remove("model_type")), "missing field 'model_type'");
    }

    @Test
    void refusesAFieldOfTheWrongKind() throws IOException {
        assertRefused(edited(json -> json.put("n_embd", "32")), "n_embd");
        assertRefused(edited(json -> json.put("n_layer", 0)), "n_layer");
    }

    @Test
    void refusesAnUnsupportedLayerNormEpsilon() throws IOException {
        assertRefused(edited(json -> json.put("layer_norm_epsilon", 1e-6)), "layer_norm_epsilon");
    }

    @Test
    void refusesAnotherActivationOrMlpWidth() throws IOException {
        assertRefused(edited(json -> json.put("activation_function", "relu")), "activation_function");
        assertRefused(edited(json -> json.put("n_inner", 100)), "n_inner");
    }

    @Test
    void refusesAShapeGptConfigRejects() throws IOException {
        assertRefused(edited(json -> json.put("n_head", 5)), "divisible");
    }

    @Test
    void refusesMalformedJson() throws IOException {
        Path file = dir.resolve("config.json");
        Files.writeString(file, "{\"model_type\": \"gpt2\",");
        assertRefused(file, "malformed JSON");
    }
}
