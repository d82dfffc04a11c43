package dev.anvil.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BFloat16Test {

    @Test
    void widensExactly() {
        assertEquals(1.0f, BFloat16.toFloat((short) 0x3f80));
        assertEquals(-2.0f, BFloat16.toFloat((short) 0xc000));
        assertEquals(Float.POSITIVE_INFINITY, BFloat16.toFloat((short) 0x7f80));
    }

    @Test
    void keepsValuesThatAreAlreadyBf16() {
        for (float f : new float[] {0f, -0f, 1f, -3.5f, 0x1p-130f, Float.NEGATIVE_INFINITY}) {
            assertEquals(Float.floatToRawIntBits(f), Float.floatToRawIntBits(BFloat16.round(f)));
        }
    }

    @Test
    void roundsToNearestWithTiesToEven() {
        float ulp = 0x1p-7f; // bf16's spacing just above 1
        assertEquals(1f, BFloat16.round(1f + ulp / 2), "tie rounds down to the even 1.0");
        assertEquals(1f + 2 * ulp, BFloat16.round(1f + 1.5f * ulp), "tie rounds up to the even 1+2ulp");
        assertEquals(1f + ulp, BFloat16.round(1f + ulp / 2 + 0x1p-20f), "above the tie rounds up");
        assertEquals(1f, BFloat16.round(1f + ulp / 2 - 0x1p-20f), "below the tie rounds down");
        assertEquals(-1f - ulp, BFloat16.round(-1f - ulp / 2 - 0x1p-20f), "negative values round by magnitude");
    }

    @Test
    void overflowsToInfinityAsRoundingDemands() {
        assertEquals(Float.POSITIVE_INFINITY, BFloat16.round(Float.MAX_VALUE));
    }

    @Test
    void preservesNanAndItsSign() {
        float lowPayloadNan = Float.intBitsToFloat(0x7f800001); // plain rounding would make this +inf
        assertTrue(Float.isNaN(BFloat16.round(lowPayloadNan)));
        float negativeNan = Float.intBitsToFloat(0xffc00000);
        assertTrue(Float.isNaN(BFloat16.round(negativeNan)));
        assertTrue(BFloat16.fromFloat(negativeNan) < 0, "sign bit kept");
        assertTrue(Float.isNaN(BFloat16.round(Float.intBitsToFloat(0x7fffffff))));
    }
}
