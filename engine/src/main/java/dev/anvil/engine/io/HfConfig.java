package dev.anvil.engine.io;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.anvil.engine.model.GptConfig;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Hugging Face {@code config.json} for {@code GPT2LMHeadModel}: the model's shape, and the fixed
 * choices of Anvil's GPT-2 (LayerNorm epsilon 1e-5, tanh-approximated GELU, MLP width 4C).
 */
public final class HfConfig {

    /** The LayerNorm epsilon Anvil's kernels use. */
    public static final double LAYER_NORM_EPSILON = 1e-5;

    /** Activation names HF uses for the tanh approximation of GELU that Anvil computes. */
    private static final List<String> ACTIVATIONS = List.of("gelu_new", "gelu_pytorch_tanh");

    private HfConfig() {
    }

    /**
     * Writes {@code config} to {@code file} atomically, with {@code vocab_size} the real vocabulary
     * and {@code torch_dtype} naming {@code dtype}. Keys are sorted, as {@code save_pretrained} does.
     */
    public static void write(Path file, GptConfig config, TensorDtype dtype) throws IOException {
        Map<String, Object> json = new TreeMap<>();
        json.put("model_type", "gpt2");
        json.put("architectures", List.of("GPT2LMHeadModel"));
        json.put("n_embd", config.channels());
        json.put("n_layer", config.numLayers());
        json.put("n_head", config.numHeads());
        json.put("n_positions", config.maxSeqLen());
        json.put("n_ctx", config.maxSeqLen());
        json.put("vocab_size", config.vocabSize());
        json.put("layer_norm_epsilon", LAYER_NORM_EPSILON);
        json.put("activation_function", ACTIVATIONS.getFirst());
        json.put("torch_dtype", torchName(dtype));
        String text = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n";
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        AtomicFiles.write(file, channel -> AtomicFiles.writeFully(channel, ByteBuffer.wrap(bytes)));
    }

    /**
     * Reads {@code file} into a {@link GptConfig} whose vocabulary is padded to a multiple of 128.
     * {@code model_type}, {@code n_embd}, {@code n_layer}, {@code n_head}, {@code n_positions} and
     * {@code vocab_size} are required; {@code layer_norm_epsilon}, {@code activation_function} and
     * {@code n_inner} default as in HF's {@code GPT2Config} and must match what Anvil computes.
     *
     * @throws ModelFormatException naming the field, if the file is not a GPT-2 config Anvil can run
     */
    public static GptConfig read(Path file) throws IOException {
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(Files.readAllBytes(file));
        } catch (JacksonException e) {
            throw new ModelFormatException(file, "malformed JSON at " + Json.describe(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelFormatException(file, "not a JSON object");
        }
        String modelType = text(file, root, "model_type");
        if (!modelType.equals("gpt2")) {
            throw new ModelFormatException(file, "model_type is '" + modelType + "'; only 'gpt2' is supported");
        }
        int channels = positiveInt(file, root, "n_embd");
        int layers = positiveInt(file, root, "n_layer");
        int heads = positiveInt(file, root, "n_head");
        int positions = positiveInt(file, root, "n_positions");
        int vocab = positiveInt(file, root, "vocab_size");
        JsonNode eps = root.get("layer_norm_epsilon");
        if (eps != null && !(eps.isNumber()
                && Math.abs(eps.doubleValue() - LAYER_NORM_EPSILON) <= 1e-6 * LAYER_NORM_EPSILON)) {
            throw new ModelFormatException(file, "layer_norm_epsilon is " + eps + "; Anvil supports only "
                    + LAYER_NORM_EPSILON);
        }
        JsonNode activation = root.get("activation_function");
        if (activation != null && !(activation.isTextual() && ACTIVATIONS.contains(activation.textValue()))) {
            throw new ModelFormatException(file, "activation_function is " + activation + "; Anvil supports "
                    + ACTIVATIONS);
        }
        JsonNode inner = root.get("n_inner");
        if (inner != null && !inner.isNull() && !(inner.isIntegralNumber() && inner.longValue() == 4L * channels)) {
            throw new ModelFormatException(file, "n_inner is " + inner + "; Anvil's MLP width is 4 * n_embd = "
                    + 4L * channels);
        }
        try {
            return GptConfig.of(layers, channels, heads, positions, vocab);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, "inconsistent model shape: " + e.getMessage(), e);
        }
    }

    /** HF's {@code torch_dtype} name of {@code dtype}. */
    static String torchName(TensorDtype dtype) {
        return switch (dtype) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
        };
    }

    private static JsonNode field(Path file, JsonNode root, String name) throws ModelFormatException {
        JsonNode node = root.get(name);
        if (node == null || node.isNull()) {
            throw new ModelFormatException(file, "missing field '" + name + "'");
        }
        return node;
    }

    private static String text(Path file, JsonNode root, String name) throws ModelFormatException {
        JsonNode node = field(file, root, name);
        if (!node.isTextual()) {
            throw new ModelFormatException(file, "field '" + name + "' is " + node + ", not a string");
        }
        return node.textValue();
    }

    private static int positiveInt(Path file, JsonNode root, String name) throws ModelFormatException {
        JsonNode node = field(file, root, name);
        if (!node.isIntegralNumber() || !node.canConvertToInt() || node.intValue() <= 0) {
            throw new ModelFormatException(file, "field '" + name + "' is " + node + ", not a positive integer");
        }
        return node.intValue();
    }
}
