package dev.anvil.engine.model;

import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GptModelTrainingTest {

    private static final GptConfig TINY = GptConfig.preset("tiny");

    private static int[] randomTokens(int n, int vocab, long seed) {
        Random r = new Random(seed);
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = r.nextInt(vocab);
        }
        return tokens;
    }

    @Test
    void initialLossIsNearUniformCrossEntropy() {
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, TINY)) {
            model.initialize(1);
            int[] tokens = randomTokens(4 * 64 + 1, TINY.vocabSize(), 2);
            float loss = model.evaluate(java.util.Arrays.copyOfRange(tokens, 0, 256),
                    java.util.Arrays.copyOfRange(tokens, 1, 257), 4, 64);
            assertEquals(Math.log(TINY.vocabSize()), loss, 0.1);
        }
    }

    @Test
    void trainingMemorisesOneBatch() {
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, TINY);
             AdamW adamw = new AdamW(backend, model.layout(), new AdamWConfig(0.9f, 0.95f, 1e-8f, 0f, 1f))) {
            model.initialize(42);
            int b = 2, t = 32;
            int[] tokens = randomTokens(b * t + 1, TINY.vocabSize(), 7);
            int[] inputs = java.util.Arrays.copyOfRange(tokens, 0, b * t);
            int[] targets = java.util.Arrays.copyOfRange(tokens, 1, b * t + 1);
            float first = Float.NaN, last = Float.NaN;
            for (int step = 0; step < 60; step++) {
                model.zeroGradients();
                float loss = model.forward(inputs, targets, b, t);
                model.backward();
                float norm = adamw.gradientNorm(model.gradients());
                adamw.step(model.parameters(), model.gradients(), 3e-3f, adamw.clipScale(norm));
                if (step == 0) {
                    first = loss;
                }
                last = loss;
            }
            assertTrue(last < 0.3f * first, "loss should fall from " + first + ", ended at " + last);
        }
    }

    @Test
    void gradientsAreIdenticalWhateverTheThreadCount() {
        float[][] results = new float[2][];
        for (int run = 0; run < 2; run++) {
            try (CpuBackend backend = new CpuBackend(run + 1); GptModel model = new GptModel(backend, TINY)) {
                model.initialize(3);
                int[] tokens = randomTokens(2 * 64 + 1, TINY.vocabSize(), 5);
                model.forward(java.util.Arrays.copyOfRange(tokens, 0, 128), java.util.Arrays.copyOfRange(tokens, 1, 129), 2, 64);
                model.backward();
                results[run] = model.readGradients();
            }
        }
        assertArrayEquals(results[0], results[1]);
    }

    @Test
    void shorterSequenceAfterLongerOneUsesItsOwnLength() {
        try (CpuBackend backend = new CpuBackend(2); GptModel fresh = new GptModel(backend, TINY);
             GptModel reused = new GptModel(backend, TINY)) {
            fresh.initialize(9);
            reused.initialize(9);
            int[] tokens = randomTokens(2 * 64 + 1, TINY.vocabSize(), 11);
            int[] in64 = java.util.Arrays.copyOfRange(tokens, 0, 128), tg64 = java.util.Arrays.copyOfRange(tokens, 1, 129);
            reused.forward(in64, tg64, 2, 64);
            reused.backward();
            reused.zeroGradients();
            int[] in20 = java.util.Arrays.copyOfRange(tokens, 0, 40), tg20 = java.util.Arrays.copyOfRange(tokens, 1, 41);
            assertEquals(fresh.forward(in20, tg20, 2, 20), reused.forward(in20, tg20, 2, 20));
            fresh.backward();
            reused.backward();
            assertArrayEquals(fresh.readGradients(), reused.readGradients());
        }
    }

    @Test
    void badBatchesAreRefusedWithTheReason() {
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, TINY)) {
            int[] ids = new int[200];
            var tooLong = assertThrows(IllegalArgumentException.class, () -> model.forward(ids, ids, 1, 65));
            assertTrue(tooLong.getMessage().contains("exceeds"), tooLong.getMessage());
            var shortInput = assertThrows(IllegalArgumentException.class, () -> model.forward(ids, ids, 4, 64));
            assertTrue(shortInput.getMessage().contains("needs 256 tokens"), shortInput.getMessage());
            var badBatch = assertThrows(IllegalArgumentException.class, () -> model.forward(ids, ids, -1, 8));
            assertTrue(badBatch.getMessage().contains("positive"), badBatch.getMessage());
            assertThrows(IllegalStateException.class, model::backward);
        }
    }
}
