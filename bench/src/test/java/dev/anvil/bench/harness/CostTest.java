package dev.anvil.bench.harness;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class CostTest {

    @Test
    void aNodeAt18Dollars50TrainingAt48kTokensPerSecond() {
        // 18.5 / (48,000 · 3600) · 1e6 = 0.107060185...: $0.107 per million tokens.
        assertEquals(0.10706, Cost.perMillionTokens(18.5, 1, 48_000), 1e-5);
    }

    @Test
    void eightGpusCostEightTimesTheHourlyPrice() {
        // 8 · 2.50 / (100,000 · 3600) · 1e6 = 0.0555...
        assertEquals(0.055556, Cost.perMillionTokens(2.5, 8, 100_000), 1e-6);
    }

    @Test
    void nonsenseIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> Cost.perMillionTokens(1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> Cost.perMillionTokens(-1, 1, 10));
    }
}
