package dev.anvil.engine.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ActivationsTest {

    @Test
    void theLmHeadHoldsLogitsForAChunkOfRowsWithinItsBudget() {
        // The CPU speed bar: B·T = 1024 positions of a 50304-token vocabulary, 206 MB of logits in full.
        int rows = Activations.headRows(1024, 4, 50304);
        assertEquals(512, rows, "two equal chunks of 103 MB");
        assertTrue((long) rows * 50304 * Float.BYTES <= Activations.LOGITS_BUDGET_BYTES);
    }

    @Test
    void smallBatchesKeepAllTheirLogitsAndSamplingFitsEveryLastPosition() {
        assertEquals(512, Activations.headRows(512, 8, 512));
        assertEquals(1024, Activations.headRows(1024L * 1024, 1024, 50304), "at least one row per sequence");
    }
}
