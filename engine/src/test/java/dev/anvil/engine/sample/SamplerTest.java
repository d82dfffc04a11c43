package dev.anvil.engine.sample;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {

    @Test
    void temperatureZeroPicksTheMostLikelyToken() {
        assertEquals(2, new Sampler(0f, 0, 1).next(new float[] {0.1f, 1f, 3f, -2f}));
    }

    @Test
    void topKNeverPicksOutsideTheTopK() {
        Sampler sampler = new Sampler(5f, 2, 7);
        float[] logits = {1f, 0.9f, 0.8f, 3f, 2.5f};
        for (int i = 0; i < 2000; i++) {
            int token = sampler.next(logits);
            assertTrue(token == 3 || token == 4, "picked " + token);
        }
    }

    @Test
    void drawsFollowTheSoftmax() {
        Sampler sampler = new Sampler(1f, 0, 11);
        float[] logits = {0f, (float) Math.log(3)}; // probabilities 1/4 and 3/4
        int ones = 0, n = 40_000;
        for (int i = 0; i < n; i++) {
            ones += sampler.next(logits);
        }
        assertEquals(0.75, ones / (double) n, 0.01);
    }

    @Test
    void sameSeedGivesSameDraws() {
        Sampler a = new Sampler(1f, 0, 5), b = new Sampler(1f, 0, 5);
        float[] logits = {0.3f, 0.1f, 0.5f, 0.2f};
        for (int i = 0; i < 100; i++) {
            assertEquals(a.next(logits), b.next(logits));
        }
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(-1f, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1f, -3, 1));
    }
}
