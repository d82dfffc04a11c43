package dev.anvil.engine.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where each named tensor of a GPT-2 model sits in the one contiguous parameter buffer (and, by the
 * same offsets, in the gradient buffer).
 *
 * <p>Order: {@code wte, wpe}, then each block's tensors in turn (block 0 first), then {@code ln_f}.
 * The backward pass finishes {@code ln_f} first, then blocks from the last to the first, then the
 * embeddings, so the finished gradients always form a contiguous suffix of the buffer: data-parallel
 * sync can all-reduce it in buckets while the backward pass goes on.
 *
 * <p>Names are those of Hugging Face's {@code GPT2LMHeadModel}. Shapes are Anvil's: matmul weights
 * are {@code [out, in]} as in {@code nn.Linear}, the transpose of HF's {@code Conv1D}; the token
 * embedding has the padded vocabulary's rows.
 */
public final class ParameterLayout {

    /**
     * One named tensor of the layout.
     *
     * @param name        HF tensor name, e.g. {@code transformer.h.3.attn.c_attn.weight}
     * @param offset      first element in the parameter buffer
     * @param shape       Anvil's shape
     * @param weightDecay whether AdamW decays it (2-D tensors: matmul weights and embeddings)
     * @param conv1d      whether HF stores it transposed ({@code Conv1D} weights)
     */
    public record Tensor(String name, long offset, int[] shape, boolean weightDecay, boolean conv1d) {

        /** Number of elements. */
        public long size() {
            long n = 1;
            for (int d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** The tensors of one transformer block, in layout order, by their name suffix. */
    public static final List<String> BLOCK_TENSORS = List.of(
            "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
            "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
            "mlp.c_proj.weight", "mlp.c_proj.bias");

    private final GptConfig config;
    private final List<Tensor> tensors;
    private final Map<String, Tensor> byName;
    private final long totalSize;

    private ParameterLayout(GptConfig config) {
        this.config = config;
        int c = config.channels();
        List<Tensor> list = new ArrayList<>();
        long[] next = {0};
        Adder add = (name, decay, conv1d, shape) -> {
            Tensor t = new Tensor(name, next[0], shape, decay, conv1d);
            list.add(t);
            next[0] += t.size();
        };
        add.add("transformer.wte.weight", true, false, config.paddedVocabSize(), c);
        add.add("transformer.wpe.weight", true, false, config.maxSeqLen(), c);
        for (int l = 0; l < config.numLayers(); l++) {
            String p = "transformer.h." + l + ".";
            add.add(p + "ln_1.weight", false, false, c);
            add.add(p + "ln_1.bias", false, false, c);
            add.add(p + "attn.c_attn.weight", true, true, 3 * c, c);
            add.add(p + "attn.c_attn.bias", false, false, 3 * c);
            add.add(p + "attn.c_proj.weight", true, true, c, c);
            add.add(p + "attn.c_proj.bias", false, false, c);
            add.add(p + "ln_2.weight", false, false, c);
            add.add(p + "ln_2.bias", false, false, c);
            add.add(p + "mlp.c_fc.weight", true, true, 4 * c, c);
            add.add(p + "mlp.c_fc.bias", false, false, 4 * c);
            add.add(p + "mlp.c_proj.weight", true, true, c, 4 * c);
            add.add(p + "mlp.c_proj.bias", false, false, c);
        }
        add.add("transformer.ln_f.weight", false, false, c);
        add.add("transformer.ln_f.bias", false, false, c);
        this.tensors = Collections.unmodifiableList(list);
        Map<String, Tensor> map = new LinkedHashMap<>();
        for (Tensor t : list) {
            map.put(t.name(), t);
        }
        this.byName = Collections.unmodifiableMap(map);
        this.totalSize = next[0];
    }

    @FunctionalInterface
    private interface Adder {
        void add(String name, boolean decay, boolean conv1d, int... shape);
    }

    /** The layout of a model of shape {@code config}. */
    public static ParameterLayout of(GptConfig config) {
        return new ParameterLayout(config);
    }

    /** The model shape this layout is for. */
    public GptConfig config() {
        return config;
    }

    /** All tensors in buffer order. */
    public List<Tensor> tensors() {
        return tensors;
    }

    /**
     * The tensor called {@code name}.
     *
     * @throws IllegalArgumentException if there is none
     */
    public Tensor tensor(String name) {
        Tensor t = byName.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no tensor named '" + name + "' in a model of " + config);
        }
        return t;
    }

    /** Whether a tensor called {@code name} exists. */
    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** The tensor {@code suffix} (one of {@link #BLOCK_TENSORS}) of block {@code layer}. */
    public Tensor block(int layer, String suffix) {
        return tensor("transformer.h." + layer + "." + suffix);
    }

    /** First element of block {@code layer}; {@code layer == numLayers} gives the start of {@code ln_f}. */
    public long blockStart(int layer) {
        return layer == config.numLayers() ? tensor("transformer.ln_f.weight").offset()
                : block(layer, BLOCK_TENSORS.getFirst()).offset();
    }

    /** Total elements, the size of the parameter and gradient buffers. */
    public long totalSize() {
        return totalSize;
    }
}
