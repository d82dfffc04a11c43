package dev.anvil.bench.harness;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PeakTest {

    @Test
    void aKnownGpuGivesItsDensePeakForTheDtype() {
        assertEquals(989, Peak.parse("h100-sxm", "bf16").tflops());
        assertEquals(67, Peak.parse("H100-SXM", "fp32").tflops());
        assertEquals(312, Peak.parse("a100", "bf16").tflops());
    }

    @Test
    void aNumberIsTakenAsIs() {
        Peak p = Peak.parse("123.5", "bf16");
        assertEquals(123.5, p.tflops());
        assertEquals("--peak-tflops", p.source());
    }

    @Test
    void anUnknownNameListsTheKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Peak.parse("v100", "bf16"));
        assertTrue(e.getMessage().contains("h100-sxm"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Peak.parse("0", "bf16"));
    }

    @Test
    void statsOfAnEvenSample() {
        assertEquals(new Stats(2.5, 1, 4), Stats.of(new double[] {4, 1, 3, 2}));
    }
}
