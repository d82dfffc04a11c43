package dev.anvil.engine.model;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.concurrent.ForkJoinPool;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** The initial weights are drawn in parallel, yet depend on the seed alone. */
class GptInitTest {

    /** V·C = 3.2M values in wte: four chunks of one tensor, besides the blocks' tensors. */
    private static final GptConfig CONFIG = GptConfig.of(1, 64, 4, 64, 50257);

    @Test
    void parametersDependOnTheSeedNotOnTheNumberOfThreads() throws Exception {
        ParameterLayout layout = ParameterLayout.of(CONFIG);
        float[] one = inPool(1, layout), three = inPool(3, layout);

        assertArrayEquals(one, three, "one thread against three");
        assertArrayEquals(one, GptInit.parameters(layout, 42), "the common pool");
    }

    @Test
    void eachChunkHasItsOwnStream() {
        ParameterLayout layout = ParameterLayout.of(CONFIG);
        float[] p = GptInit.parameters(layout, 42);
        int wte = (int) layout.tensors().getFirst().offset();

        float[] first = Arrays.copyOfRange(p, wte, wte + 64);
        float[] second = Arrays.copyOfRange(p, wte + GptInit.CHUNK, wte + GptInit.CHUNK + 64);
        assertFalse(Arrays.equals(first, second), "two chunks drew the same values");
        assertEquals(0f, p[wte + CONFIG.vocabSize() * CONFIG.channels()], "padded vocabulary rows stay zero");
    }

    private static float[] inPool(int threads, ParameterLayout layout) throws Exception {
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            return pool.submit(() -> GptInit.parameters(layout, 42)).get();
        } finally {
            pool.shutdown();
        }
    }
}
