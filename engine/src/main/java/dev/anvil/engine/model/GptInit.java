package dev.anvil.engine.model;

import java.util.Random;

/**
 * GPT-2's initialisation: weights and embeddings from N(0, 0.02²), the residual output
 * projections ({@code attn.c_proj}, {@code mlp.c_proj}) from N(0, (0.02/sqrt(2L))²), LayerNorm
 * weights 1 and every bias 0. Padded vocabulary rows start at zero. {@link Random} is specified
 * exactly by the JDK, so a seed gives the same parameters on every machine.
 */
public final class GptInit {

    private static final double STD = 0.02;

    private GptInit() {
    }

    /** The initial weights of a model of {@code layout} from {@code seed}, in layout order. */
    public static float[] parameters(ParameterLayout layout, long seed) {
        GptConfig config = layout.config();
        float[] params = new float[Math.toIntExact(layout.totalSize())];
        Random random = new Random(seed);
        double residualStd = STD / Math.sqrt(2.0 * config.numLayers());
        for (ParameterLayout.Tensor t : layout.tensors()) {
            String name = t.name();
            int start = (int) t.offset();
            int end = (int) (t.offset() + t.size());
            if (name.endsWith(".bias")) {
                continue;
            }
            if (name.contains("ln_")) {
                java.util.Arrays.fill(params, start, end, 1f);
                continue;
            }
            if (name.equals("transformer.wte.weight")) {
                end = start + config.vocabSize() * config.channels();
            }
            double std = name.endsWith("c_proj.weight") ? residualStd : STD;
            for (int i = start; i < end; i++) {
                params[i] = (float) (random.nextGaussian() * std);
            }
        }
        return params;
    }
}
