package dev.anvil.engine.model;

import dev.anvil.kernels.Buffer;

/**
 * Named views of a whole model's tensors inside one contiguous buffer. The same layout cuts the
 * parameter buffer and the gradient buffer, so {@code grads.blocks()[3].qkvw()} is the gradient of
 * {@code params.blocks()[3].qkvw()}.
 */
public record ModelTensors(Buffer wte, Buffer wpe, BlockTensors[] blocks, Buffer lnfw, Buffer lnfb) {

    /** Cuts {@code all} (of {@link ParameterLayout#totalSize()} elements) into named views. */
    public static ModelTensors slice(Buffer all, ParameterLayout layout) {
        if (all.length() != layout.totalSize()) {
            throw new IllegalArgumentException("buffer holds " + all.length() + " elements, the layout needs "
                    + layout.totalSize());
        }
        BlockTensors[] blocks = new BlockTensors[layout.config().numLayers()];
        for (int l = 0; l < blocks.length; l++) {
            blocks[l] = BlockTensors.slice(all, layout, l);
        }
        return new ModelTensors(view(all, layout, "transformer.wte.weight"), view(all, layout, "transformer.wpe.weight"),
                blocks, view(all, layout, "transformer.ln_f.weight"), view(all, layout, "transformer.ln_f.bias"));
    }

    private static Buffer view(Buffer all, ParameterLayout layout, String name) {
        ParameterLayout.Tensor t = layout.tensor(name);
        return all.slice(t.offset(), t.size());
    }
}
