package dev.anvil.engine.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * GPT-2's initialisation: weights and embeddings from N(0, 0.02²), the residual output
 * projections ({@code attn.c_proj}, {@code mlp.c_proj}) from N(0, (0.02/sqrt(2L))²), LayerNorm
 * weights 1 and every bias 0. Padded vocabulary rows start at zero.
 *
 * <p>Each tensor is drawn in chunks of {@value #CHUNK} values, each chunk from its own
 * {@link Random} seeded from (seed, tensor, chunk), so the chunks are drawn in parallel (gpt-1.3b's
 * 1.3 billion Gaussians take about a minute on one core) and the parameters depend on the seed
 * alone: not on the number of threads, nor on the machine, since {@link Random} is specified
 * exactly by the JDK.
 */
public final class GptInit {

    private static final double STD = 0.02;
    /** Values per random stream. */
    static final int CHUNK = 1 << 20;

    private GptInit() {
    }

    /** One run of values drawn from one stream. */
    private record Chunk(int start, int end, double std, long streamSeed) {
    }

    /** The initial weights of a model of {@code layout} from {@code seed}, in layout order. */
    public static float[] parameters(ParameterLayout layout, long seed) {
        GptConfig config = layout.config();
        float[] params = new float[Math.toIntExact(layout.totalSize())];
        double residualStd = STD / Math.sqrt(2.0 * config.numLayers());
        List<Chunk> chunks = new ArrayList<>();
        List<ParameterLayout.Tensor> tensors = layout.tensors();
        for (int ti = 0; ti < tensors.size(); ti++) {
            ParameterLayout.Tensor t = tensors.get(ti);
            String name = t.name();
            int start = (int) t.offset();
            int end = (int) (t.offset() + t.size());
            if (name.endsWith(".bias")) {
                continue;
            }
            if (name.contains("ln_")) {
                Arrays.fill(params, start, end, 1f);
                continue;
            }
            if (name.equals("transformer.wte.weight")) {
                end = start + config.vocabSize() * config.channels();
            }
            double std = name.endsWith("c_proj.weight") ? residualStd : STD;
            for (int k = 0, from = start; from < end; k++, from += CHUNK) {
                chunks.add(new Chunk(from, Math.min(end, from + CHUNK), std, streamSeed(seed, ti, k)));
            }
        }
        chunks.parallelStream().forEach(c -> {
            Random random = new Random(c.streamSeed());
            for (int i = c.start(); i < c.end(); i++) {
                params[i] = (float) (random.nextGaussian() * c.std());
            }
        });
        return params;
    }

    /**
     * The seed of chunk {@code chunk} of tensor {@code tensor}: SplitMix64's finaliser over the three,
     * so that neighbouring chunks get unrelated {@link Random} states.
     */
    static long streamSeed(long seed, int tensor, int chunk) {
        long z = seed + 0x9E3779B97F4A7C15L * (((long) tensor << 32 | chunk) + 1);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
