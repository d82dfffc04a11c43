package dev.anvil.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.ParameterLayout;
import dev.anvil.kernels.BFloat16;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfModelFilesTest {

    /** L=2, C=32, nh=4, T=16, vocabulary 100 padded to 128. */
    private static final GptConfig CONFIG = GptConfig.of(2, 32, 4, 16, 100);
    private static final ParameterLayout LAYOUT = ParameterLayout.of(CONFIG);

    @TempDir
    Path dir;

    /** Random parameters, padded embedding rows included, so that a load must clear them. */
    private static float[] randomParams(long seed) {
        Random random = new Random(seed);
        float[] params = new float[(int) LAYOUT.totalSize()];
        for (int i = 0; i < params.length; i++) {
            params[i] = (float) random.nextGaussian();
        }
        return params;
    }

    private Path weights() {
        return dir.resolve(HfModelFiles.WEIGHTS_FILE);
    }

    /** Rewrites the saved weights after {@code edit} has changed the list of stored tensors. */
    private void rewriteWeights(Consumer<List<SafeTensors.TensorData>> edit) throws IOException {
        List<SafeTensors.TensorData> tensors = new ArrayList<>();
        try (SafeTensors st = SafeTensors.open(weights())) {
            for (SafeTensors.TensorInfo info : st.tensors().values()) {
                float[] values = st.read(info.name());
                tensors.add(new SafeTensors.TensorData(info.name(), info.dtype(), info.shape(),
                        () -> FloatBuffer.wrap(values)));
            }
        }
        edit.accept(tensors);
        SafeTensors.write(weights(), Map.of("format", "pt"), tensors);
    }

    private static SafeTensors.TensorData zeros(String name, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] values = new float[(int) n];
        return new SafeTensors.TensorData(name, TensorDtype.F32, shape, () -> FloatBuffer.wrap(values));
    }

    private ModelFormatException refusedLoad() {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelFiles.load(dir));
        assertTrue(e.getMessage().startsWith(e.file().toString()), e.getMessage());
        return e;
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }

    @Test
    void f32RoundTripsBitExactlyWithPaddedEmbeddingRowsZero() throws IOException {
        float[] params = randomParams(1);
        HfModelFiles.save(dir, CONFIG, params, TensorDtype.F32);
        ModelWeights loaded = HfModelFiles.load(dir);
        assertEquals(CONFIG, loaded.config());
        int paddedStart = CONFIG.vocabSize() * CONFIG.channels();
        int paddedEnd = CONFIG.paddedVocabSize() * CONFIG.channels();
        for (int i = 0; i < params.length; i++) {
            float expected = i >= paddedStart && i < paddedEnd ? 0f : params[i];
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(loaded.params()[i]), "element " + i);
        }
    }

    @Test
    void bf16RoundTripGivesTheBf16RoundingOfEachParameter() throws IOException {
        float[] params = randomParams(2);
        HfModelFiles.save(dir, CONFIG, params, TensorDtype.BF16);
        float[] loaded = HfModelFiles.load(dir).params();
        int paddedStart = CONFIG.vocabSize() * CONFIG.channels();
        int paddedEnd = CONFIG.paddedVocabSize() * CONFIG.channels();
        for (int i = 0; i < params.length; i++) {
            float expected = i >= paddedStart && i < paddedEnd ? 0f : BFloat16.round(params[i]);
            assertEquals(expected, loaded[i], "element " + i);
        }
        try (SafeTensors st = SafeTensors.open(weights())) {
            st.tensors().values().forEach(t -> assertEquals(TensorDtype.BF16, t.dtype(), t.name()));
        }
    }

    @Test
    void writesTheNamesDtypesShapesAndLayoutTransformersExpects() throws IOException {
        float[] params = randomParams(3);
        HfModelFiles.save(dir, CONFIG, params, TensorDtype.F32);
        byte[] bytes = Files.readAllBytes(weights());
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = new ObjectMapper().readTree(new String(bytes, 8, (int) n, StandardCharsets.UTF_8));

        Set<String> expectedNames = new HashSet<>();
        LAYOUT.tensors().forEach(t -> expectedNames.add(t.name()));
        expectedNames.add("__metadata__");
        Set<String> names = new HashSet<>();
        header.fieldNames().forEachRemaining(names::add);
        assertEquals(expectedNames, names, "every parameter, no lm_head.weight (tied)");
        assertEquals("pt", header.get("__metadata__").get("format").textValue());
        header.properties().stream().filter(e -> !e.getKey().equals("__metadata__"))
                .forEach(e -> assertEquals("F32", e.getValue().get("dtype").textValue(), e.getKey()));

        String h1 = "transformer.h.1.";
        assertEquals("[100,32]", header.get("transformer.wte.weight").get("shape").toString());
        assertEquals("[16,32]", header.get("transformer.wpe.weight").get("shape").toString());
        assertEquals("[32,96]", header.get(h1 + "attn.c_attn.weight").get("shape").toString());
        assertEquals("[96]", header.get(h1 + "attn.c_attn.bias").get("shape").toString());
        assertEquals("[32,32]", header.get(h1 + "attn.c_proj.weight").get("shape").toString());
        assertEquals("[32,128]", header.get(h1 + "mlp.c_fc.weight").get("shape").toString());
        assertEquals("[128,32]", header.get(h1 + "mlp.c_proj.weight").get("shape").toString());
        assertEquals("[32]", header.get("transformer.ln_f.bias").get("shape").toString());

        try (SafeTensors st = SafeTensors.open(weights())) {
            float[] hf = st.read(h1 + "attn.c_attn.weight"); // HF [C, 3C]
            int anvil = (int) LAYOUT.tensor(h1 + "attn.c_attn.weight").offset(); // Anvil [3C, C]
            for (int i = 0; i < 32; i++) {
                for (int j = 0; j < 96; j++) {
                    assertEquals(params[anvil + j * 32 + i], hf[i * 96 + j], "HF c_attn[" + i + "][" + j + "]");
                }
            }
            float[] wte = st.read("transformer.wte.weight");
            assertArrayEquals(Arrays.copyOf(params, 100 * 32), wte, "the first vocabSize rows");
        }
    }

    @Test
    void loadsNamesWithoutThePrefixATiedLmHeadAndOldMaskBuffers() throws IOException {
        float[] params = randomParams(4);
        HfModelFiles.save(dir, CONFIG, params, TensorDtype.F32);
        float[] expected = HfModelFiles.load(dir).params();
        rewriteWeights(tensors -> {
            tensors.replaceAll(t -> new SafeTensors.TensorData(t.name().substring("transformer.".length()),
                    t.dtype(), t.shape(), t.values()));
            tensors.add(zeros("lm_head.weight", 100, 32));
            tensors.add(zeros("h.0.attn.bias", 1, 1, 16, 16));
            tensors.add(zeros("h.1.attn.masked_bias"));
        });
        assertArrayEquals(expected, HfModelFiles.load(dir).params());
    }

    @Test
    void refusesALmHeadThatCannotBeTiedToTheEmbedding() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(5), TensorDtype.F32);
        rewriteWeights(tensors -> tensors.add(zeros("lm_head.weight", 128, 32)));
        assertMentions(refusedLoad(), "lm_head.weight", "[128, 32]");
    }

    @Test
    void refusesATruncatedFileNamingTheTensor() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(6), TensorDtype.F32);
        try (FileChannel channel = FileChannel.open(weights(), StandardOpenOption.WRITE)) {
            channel.truncate(channel.size() - 10);
        }
        // wte is stored last, as tensors are ordered by name.
        assertMentions(refusedLoad(), HfModelFiles.WEIGHTS_FILE, "truncated", "transformer.wte.weight");
    }

    @Test
    void refusesNanOrInfinityNamingTheTensor() throws IOException {
        String[] names = {"transformer.h.1.mlp.c_proj.weight", "transformer.ln_f.bias", "transformer.wte.weight"};
        float[] poison = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (int i = 0; i < names.length; i++) {
            float[] params = randomParams(20 + i);
            // The last element: a Conv1D weight is stored transposed, so this checks the whole of it is scanned.
            ParameterLayout.Tensor t = LAYOUT.tensor(names[i]);
            int at = names[i].equals("transformer.wte.weight") ? CONFIG.vocabSize() * CONFIG.channels() - 1
                    : (int) (t.offset() + t.size() - 1);
            params[at] = poison[i];
            HfModelFiles.save(dir, CONFIG, params, TensorDtype.F32);
            assertMentions(refusedLoad(), "tensor '" + names[i] + "' holds 1 non-finite value (" + poison[i] + ")");
        }
    }

    @Test
    void refusesAMissingTensor() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(7), TensorDtype.F32);
        rewriteWeights(tensors -> tensors.removeIf(t -> t.name().equals("transformer.h.1.mlp.c_fc.bias")));
        assertMentions(refusedLoad(), HfModelFiles.WEIGHTS_FILE, "missing tensor 'transformer.h.1.mlp.c_fc.bias'");
    }

    @Test
    void refusesAnUnknownTensor() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(8), TensorDtype.F32);
        rewriteWeights(tensors -> tensors.add(zeros("transformer.h.2.ln_1.weight", 32)));
        assertMentions(refusedLoad(), HfModelFiles.WEIGHTS_FILE, "unknown tensor 'transformer.h.2.ln_1.weight'");
    }

    @Test
    void refusesATensorStoredUnderBothNames() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(9), TensorDtype.F32);
        rewriteWeights(tensors -> tensors.add(zeros("ln_f.bias", 32)));
        assertMentions(refusedLoad(), "'transformer.ln_f.bias' is stored twice");
    }

    @Test
    void refusesAWronglyShapedTensor() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(10), TensorDtype.F32);
        String name = "transformer.h.0.attn.c_proj.weight";
        rewriteWeights(tensors -> {
            tensors.removeIf(t -> t.name().equals(name));
            tensors.add(zeros(name, 16, 64));
        });
        assertMentions(refusedLoad(), HfModelFiles.WEIGHTS_FILE, "'" + name + "'", "[16, 64]", "[32, 32]");
    }

    @Test
    void refusesAConfigOfAnotherModelType() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(11), TensorDtype.F32);
        Path config = dir.resolve(HfModelFiles.CONFIG_FILE);
        Files.writeString(config, Files.readString(config).replace("\"gpt2\"", "\"gpt_neox\""));
        assertMentions(refusedLoad(), HfModelFiles.CONFIG_FILE, "model_type", "gpt_neox");
    }

    @Test
    void refusesAModelOfAnotherShapeThanExpectedNamingTheTensor() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(12), TensorDtype.F32);
        GptConfig wider = GptConfig.of(2, 64, 4, 16, 100);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelFiles.load(dir, wider));
        assertMentions(e, HfModelFiles.WEIGHTS_FILE, "tensor 'transformer.", "needs");
    }

    @Test
    void refusesAModelWithAnotherHeadCountThanExpected() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(13), TensorDtype.F32);
        GptConfig eightHeads = GptConfig.of(2, 32, 8, 16, 100);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelFiles.load(dir, eightHeads));
        assertMentions(e, HfModelFiles.CONFIG_FILE, "n_head is 4");
    }

    @Test
    void loadsIntoAnExpectedConfigWithMoreVocabularyPadding() throws IOException {
        float[] params = randomParams(14);
        HfModelFiles.save(dir, CONFIG, params, TensorDtype.F32);
        GptConfig padded = new GptConfig(16, 100, 256, 2, 4, 32);
        ModelWeights loaded = HfModelFiles.load(dir, padded);
        assertEquals(padded, loaded.config());
        assertEquals(ParameterLayout.of(padded).totalSize(), loaded.params().length);
        int c = CONFIG.channels();
        assertArrayEquals(Arrays.copyOf(params, 100 * c), Arrays.copyOf(loaded.params(), 100 * c));
        for (int i = 100 * c; i < 256 * c; i++) {
            assertEquals(0f, loaded.params()[i]);
        }
    }

    @Test
    void savingReplacesAnExistingModelAndLeavesNoTemporaryFiles() throws IOException {
        HfModelFiles.save(dir, CONFIG, randomParams(15), TensorDtype.F32);
        float[] second = randomParams(16);
        HfModelFiles.save(dir, CONFIG, second, TensorDtype.F32);
        assertEquals(second[CONFIG.paddedVocabSize() * CONFIG.channels()],
                HfModelFiles.load(dir).params()[CONFIG.paddedVocabSize() * CONFIG.channels()]);
        try (var files = Files.list(dir)) {
            assertEquals(Set.of(HfModelFiles.CONFIG_FILE, HfModelFiles.WEIGHTS_FILE),
                    Set.copyOf(files.map(p -> p.getFileName().toString()).toList()));
        }
    }

    @Test
    void refusesParametersOfAnotherSizeBeforeWritingAnything() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HfModelFiles.save(dir, CONFIG, new float[10], TensorDtype.F32));
        assertMentions(e, "10");
        assertFalse(Files.exists(weights()));
    }

    @Test
    void transposeSwapsRowsAndColumnsAcrossTileEdges() {
        int rows = 33;
        int cols = 70;
        float[] src = new float[3 + rows * cols];
        for (int i = 0; i < src.length; i++) {
            src[i] = i;
        }
        float[] dst = new float[1 + rows * cols];
        HfModelFiles.transpose(src, 3, rows, cols, dst, 1);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                assertEquals(src[3 + r * cols + c], dst[1 + c * rows + r]);
            }
        }
    }
}
