package dev.anvil.engine.io;

import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.ParameterLayout;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A model directory as Hugging Face {@code transformers} saves and loads a {@code GPT2LMHeadModel}:
 * {@code config.json} and {@code model.safetensors}.
 *
 * <p>Tensors are converted between Anvil's layout and HF's: {@code Conv1D} weights are stored
 * transposed ({@code [in, out]}), the token embedding has only the real vocabulary's rows, and the
 * LM head is tied to it, so no {@code lm_head.weight} is written.
 */
public final class HfModelFiles {

    /** The model's shape. */
    public static final String CONFIG_FILE = "config.json";
    /** The weights. */
    public static final String WEIGHTS_FILE = "model.safetensors";

    private static final String PREFIX = "transformer.";
    private static final String WTE = "transformer.wte.weight";
    private static final String LM_HEAD = "lm_head.weight";
    /** Causal-mask buffers, not parameters, that older GPT-2 checkpoints (openai-community/gpt2) carry. */
    private static final Pattern MASK_BUFFER = Pattern.compile("(transformer\\.)?h\\.\\d+\\.attn\\.(bias|masked_bias)");
    /** Marks the file as PyTorch tensors; {@code transformers} refuses a safetensors file without it. */
    private static final Map<String, String> METADATA = Map.of("format", "pt");

    private HfModelFiles() {
    }

    /**
     * Writes {@code params} of a model of shape {@code config} to {@code dir} (created if needed) as
     * {@code model.safetensors} of element type {@code dtype} and {@code config.json}. Each file is
     * replaced atomically; a crash between the two leaves a pair whose shapes {@link #load} checks.
     *
     * @throws IllegalArgumentException if {@code params} does not hold exactly the layout's parameters
     */
    public static void save(Path dir, GptConfig config, float[] params, TensorDtype dtype) throws IOException {
        ParameterLayout layout = ParameterLayout.of(config);
        if (params.length != layout.totalSize()) {
            throw new IllegalArgumentException("params has " + params.length + " elements but " + config + " has "
                    + layout.totalSize());
        }
        List<SafeTensors.TensorData> tensors = new ArrayList<>();
        for (ParameterLayout.Tensor t : layout.tensors()) {
            long[] shape = hfShape(t, config);
            int offset = (int) t.offset();
            int count = (int) Arrays.stream(shape).reduce(1, Math::multiplyExact);
            tensors.add(new SafeTensors.TensorData(t.name(), dtype, shape, t.conv1d()
                    // Transposed only when written, so one tensor's copy is alive at a time.
                    ? () -> FloatBuffer.wrap(transpose(params, offset, t.shape()[0], t.shape()[1]))
                    : () -> FloatBuffer.wrap(params, offset, count)));
        }
        Files.createDirectories(dir);
        SafeTensors.write(dir.resolve(WEIGHTS_FILE), METADATA, tensors);
        HfConfig.write(dir.resolve(CONFIG_FILE), config, dtype);
    }

    /**
     * Reads the model in {@code dir}, its shape from {@code config.json}.
     *
     * @throws ModelFormatException naming the file and tensor or field, if a file is malformed or
     *                              truncated, or a tensor is missing, unknown, wrongly shaped or holds
     *                              NaN or infinite values
     */
    public static ModelWeights load(Path dir) throws IOException {
        GptConfig config = HfConfig.read(dir.resolve(CONFIG_FILE));
        return new ModelWeights(config, readWeights(dir.resolve(WEIGHTS_FILE), config));
    }

    /**
     * Reads the model in {@code dir} into a model of shape {@code expected}, whose padded vocabulary
     * may differ from the one {@code config.json} implies.
     *
     * @throws ModelFormatException naming the tensor, if a stored tensor does not have the shape
     *                              {@code expected} needs; naming the field if {@code config.json}
     *                              differs otherwise (e.g. in heads); or as {@link #load(Path)}
     */
    public static ModelWeights load(Path dir, GptConfig expected) throws IOException {
        Path configFile = dir.resolve(CONFIG_FILE);
        GptConfig found = HfConfig.read(configFile);
        float[] params = readWeights(dir.resolve(WEIGHTS_FILE), expected);
        // Only the head count leaves no trace in the tensor shapes checked above.
        if (found.numHeads() != expected.numHeads()) {
            throw new ModelFormatException(configFile, "n_head is " + found.numHeads() + " but " + expected
                    + " was expected");
        }
        return new ModelWeights(expected, params);
    }

    private static float[] readWeights(Path file, GptConfig config) throws IOException {
        ParameterLayout layout = ParameterLayout.of(config);
        if (layout.totalSize() > Integer.MAX_VALUE - 8) {
            throw new ModelFormatException(file, config + " has " + layout.totalSize()
                    + " parameters, more than one array holds");
        }
        try (SafeTensors st = SafeTensors.open(file)) {
            Map<String, SafeTensors.TensorInfo> stored = match(file, st, layout);
            float[] params = new float[(int) layout.totalSize()];
            for (ParameterLayout.Tensor t : layout.tensors()) {
                String name = stored.get(t.name()).name();
                if (t.conv1d()) {
                    transpose(st.read(name), 0, t.shape()[1], t.shape()[0], params, (int) t.offset());
                } else {
                    // The token embedding's padded rows stay zero.
                    st.read(name, params, (int) t.offset());
                }
                requireFinite(file, name, params, (int) t.offset(), (int) t.size());
            }
            return params;
        }
    }

    /** A NaN or infinite weight would poison every step it touches: refuse it here, naming the tensor. */
    private static void requireFinite(Path file, String tensor, float[] values, int offset, int count)
            throws ModelFormatException {
        int bad = 0;
        float first = 0;
        for (int i = offset; i < offset + count; i++) {
            if (!Float.isFinite(values[i])) {
                first = bad == 0 ? values[i] : first;
                bad++;
            }
        }
        if (bad > 0) {
            throw new ModelFormatException(file, "tensor '" + tensor + "' holds " + bad + " non-finite value"
                    + (bad == 1 ? "" : "s") + " (" + first + (bad == 1 ? "" : ", ...") + "); weights like these can"
                    + " be neither trained nor evaluated");
        }
    }

    /**
     * The stored tensor for each of the layout's, by layout name, after checking that every one is
     * present with its HF shape and nothing else is stored.
     */
    private static Map<String, SafeTensors.TensorInfo> match(Path file, SafeTensors st, ParameterLayout layout)
            throws ModelFormatException {
        GptConfig config = layout.config();
        Map<String, SafeTensors.TensorInfo> byName = new HashMap<>();
        for (SafeTensors.TensorInfo info : st.tensors().values()) {
            String name = info.name();
            if (MASK_BUFFER.matcher(name).matches()) {
                continue;
            }
            if (name.equals(LM_HEAD)) {
                long[] wte = {config.vocabSize(), config.channels()};
                if (!Arrays.equals(info.shape(), wte)) {
                    throw new ModelFormatException(file, "tensor '" + LM_HEAD + "' has shape "
                            + Arrays.toString(info.shape()) + "; Anvil ties it to wte, of shape " + Arrays.toString(wte));
                }
                continue;
            }
            String canonical = name.startsWith(PREFIX) ? name : PREFIX + name;
            if (!layout.contains(canonical)) {
                throw new ModelFormatException(file, "unknown tensor '" + name + "' for " + config);
            }
            SafeTensors.TensorInfo twin = byName.put(canonical, info);
            if (twin != null) {
                throw new ModelFormatException(file, "tensor '" + canonical + "' is stored twice, as '"
                        + twin.name() + "' and '" + name + "'");
            }
        }
        List<String> missing = new ArrayList<>();
        for (ParameterLayout.Tensor t : layout.tensors()) {
            SafeTensors.TensorInfo info = byName.get(t.name());
            if (info == null) {
                missing.add(t.name());
                continue;
            }
            long[] shape = hfShape(t, config);
            if (!Arrays.equals(info.shape(), shape)) {
                throw new ModelFormatException(file, "tensor '" + info.name() + "' has shape "
                        + Arrays.toString(info.shape()) + " but " + config + " needs " + Arrays.toString(shape));
            }
        }
        if (!missing.isEmpty()) {
            throw new ModelFormatException(file, "missing tensor '" + missing.getFirst() + "'"
                    + (missing.size() > 1 ? " and " + (missing.size() - 1) + " more" : "") + " for " + config);
        }
        return byName;
    }

    /** HF's shape of {@code t}: {@code Conv1D} weights transposed, the embedding without padded rows. */
    private static long[] hfShape(ParameterLayout.Tensor t, GptConfig config) {
        int[] s = t.shape();
        if (t.conv1d()) {
            return new long[] {s[1], s[0]};
        }
        if (t.name().equals(WTE)) {
            return new long[] {config.vocabSize(), s[1]};
        }
        return Arrays.stream(s).asLongStream().toArray();
    }

    private static float[] transpose(float[] src, int srcOffset, int rows, int cols) {
        float[] dst = new float[Math.multiplyExact(rows, cols)];
        transpose(src, srcOffset, rows, cols, dst, 0);
        return dst;
    }

    /**
     * Writes the {@code [cols, rows]} transpose of the {@code [rows, cols]} matrix at {@code src} to
     * {@code dst}, in tiles so that both sides are walked through cache lines rather than strides.
     */
    static void transpose(float[] src, int srcOffset, int rows, int cols, float[] dst, int dstOffset) {
        final int tile = 32;
        for (int r0 = 0; r0 < rows; r0 += tile) {
            int r1 = Math.min(r0 + tile, rows);
            for (int c0 = 0; c0 < cols; c0 += tile) {
                int c1 = Math.min(c0 + tile, cols);
                for (int r = r0; r < r1; r++) {
                    int from = srcOffset + r * cols;
                    for (int c = c0; c < c1; c++) {
                        dst[dstOffset + c * rows + r] = src[from + c];
                    }
                }
            }
        }
    }
}
