package dev.anvil.engine.model;

import dev.anvil.kernels.Buffer;

/** Views of one transformer block's tensors inside a parameter (or gradient) buffer. */
public record BlockTensors(Buffer ln1w, Buffer ln1b, Buffer qkvw, Buffer qkvb, Buffer attprojw, Buffer attprojb,
                           Buffer ln2w, Buffer ln2b, Buffer fcw, Buffer fcb, Buffer fcprojw, Buffer fcprojb) {

    static BlockTensors slice(Buffer all, ParameterLayout layout, int layer) {
        return new BlockTensors(
                view(all, layout, layer, "ln_1.weight"), view(all, layout, layer, "ln_1.bias"),
                view(all, layout, layer, "attn.c_attn.weight"), view(all, layout, layer, "attn.c_attn.bias"),
                view(all, layout, layer, "attn.c_proj.weight"), view(all, layout, layer, "attn.c_proj.bias"),
                view(all, layout, layer, "ln_2.weight"), view(all, layout, layer, "ln_2.bias"),
                view(all, layout, layer, "mlp.c_fc.weight"), view(all, layout, layer, "mlp.c_fc.bias"),
                view(all, layout, layer, "mlp.c_proj.weight"), view(all, layout, layer, "mlp.c_proj.bias"));
    }

    private static Buffer view(Buffer all, ParameterLayout layout, int layer, String suffix) {
        ParameterLayout.Tensor t = layout.block(layer, suffix);
        return all.slice(t.offset(), t.size());
    }
}
