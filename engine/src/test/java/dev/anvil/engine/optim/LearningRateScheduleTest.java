package dev.anvil.engine.optim;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LearningRateScheduleTest {

    @Test
    void constantWarmsUpLinearlyThenHolds() {
        var s = new LearningRateSchedule.Constant(1e-3f, 4);
        assertEquals(0.25e-3f, s.at(0), 1e-9f);
        assertEquals(1e-3f, s.at(3), 1e-9f);
        assertEquals(1e-3f, s.at(1000), 1e-9f);
    }

    @Test
    void cosineStartsAtPeakAndEndsAtFloor() {
        var s = new LearningRateSchedule.WarmupCosine(6e-4f, 6e-5f, 10, 111);
        assertEquals(6e-5f, s.at(0), 1e-9f);
        assertEquals(6e-4f, s.at(9), 1e-9f);
        assertEquals(6e-4f, s.at(10), 1e-9f);
        // halfway through the decay the cosine factor is 1/2
        assertEquals((6e-4f + 6e-5f) / 2, s.at(60), 1e-9f);
        assertEquals(6e-5f, s.at(110), 1e-9f);
        assertEquals(6e-5f, s.at(500), 1e-9f);
    }

    @Test
    void invalidSchedulesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new LearningRateSchedule.Constant(-1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new LearningRateSchedule.WarmupCosine(1e-3f, 1e-2f, 0, 10));
        assertThrows(IllegalArgumentException.class, () -> new LearningRateSchedule.WarmupCosine(1e-3f, 0f, -1, 10));
    }
}
