package dev.anvil.engine.model;

import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link GptModel#zeroGradients()} is lazy, and the gradients of a step are written in two places:
 * the LM head, fused with the loss in the forward pass, writes the token embedding's share; the
 * backward pass writes the rest and adds the embedding lookup's share on top. After
 * {@code zeroGradients()} the first of them must overwrite what the last step left, and nothing
 * in between may lose the head's share.
 */
class GptModelGradientZeroingTest {

    private static final GptConfig TINY = GptConfig.preset("tiny");
    private static final int B = 2, T = 16;

    /** Inputs and targets of one batch, drawn from {@code seed}. */
    private record Batch(int[] inputs, int[] targets) {
        static Batch of(long seed) {
            int[] tokens = new Random(seed).ints(B * T + 1, 0, TINY.vocabSize()).toArray();
            return new Batch(Arrays.copyOf(tokens, B * T), Arrays.copyOfRange(tokens, 1, B * T + 1));
        }
    }

    private static final Batch FIRST = Batch.of(1), SECOND = Batch.of(2);

    /** The gradients of one step on {@code batch} by a model that has run nothing before. */
    private static float[] freshGradients(Batch batch) {
        float[][] out = new float[1][];
        withModel(model -> {
            model.zeroGradients();
            model.forward(batch.inputs, batch.targets, B, T);
            model.backward();
            out[0] = model.readGradients();
        });
        return out[0];
    }

    @Test
    void eachStepAfterZeroGradientsHasTheGradientsOfAFreshModel() {
        float[] expected = freshGradients(SECOND);
        withModel(model -> {
            stepOnFirstThenZero(model);
            // the trainer's second step: the loss copied back behind the pass
            model.forwardStep(SECOND.inputs, SECOND.targets, B, T, 1f);
            model.backward();
            model.takeLosses();
            assertArrayEquals(expected, model.readGradients(), "second step's gradients");
        });
    }

    @Test
    void readingGradientsBetweenTheLmHeadAndTheBackwardPassKeepsTheHeadsShare() {
        float[] expected = freshGradients(SECOND);
        withModel(model -> {
            stepOnFirstThenZero(model);
            model.forwardTrunk(SECOND.inputs, B, T);
            model.lmHead(SECOND.targets, 1f);
            model.readGradients();
            model.backward();
            assertArrayEquals(expected, model.readGradients(), "gradients read after the LM head");
        });
    }

    @Test
    void zeroGradientsBetweenTheLmHeadAndTheBackwardPassDropsTheHeadsShare() {
        // The head's share of the token embedding's gradient alone: read before the backward pass.
        float[][] head = new float[1][];
        withModel(model -> {
            model.zeroGradients();
            model.forward(SECOND.inputs, SECOND.targets, B, T);
            head[0] = model.readGradients();
        });
        float[] full = freshGradients(SECOND);
        withModel(model -> {
            model.zeroGradients();
            model.forward(FIRST.inputs, FIRST.targets, B, T);
            model.backward();
            model.forward(SECOND.inputs, SECOND.targets, B, T);
            model.zeroGradients();
            model.backward();
            float[] g = model.readGradients();
            int wte = Math.toIntExact(model.layout().tensor("transformer.wte.weight").size());
            assertArrayEquals(Arrays.copyOfRange(full, wte, full.length), Arrays.copyOfRange(g, wte, g.length),
                    "every gradient but the token embedding's");
            for (int i = 0; i < wte; i++) {
                // the embedding lookup's share: the full gradient less the head's (rounding aside)
                float lookup = full[i] - head[0][i];
                assertEquals(lookup, g[i], 1e-5f * (Math.abs(full[i]) + Math.abs(head[0][i])) + 1e-12f,
                        "token embedding gradient " + i);
            }
        });
    }

    /** A first step whose gradients stay behind, then the lazy {@code zeroGradients()} of the next. */
    private static void stepOnFirstThenZero(GptModel model) {
        model.zeroGradients();
        model.forward(FIRST.inputs, FIRST.targets, B, T);
        model.backward();
        model.zeroGradients();
    }

    private static void withModel(Consumer<GptModel> check) {
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, TINY)) {
            model.initialize(7);
            check.accept(model);
        }
    }
}
