package dev.anvil.kernels.cuda;

import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The switch that makes CUDA skips visible works without a GPU: it only decides skip or fail. */
class RequireCudaTest {

    @Test
    void missingCudaSkipsByDefault() {
        TestAbortedException e = assertThrows(TestAbortedException.class,
                () -> RequireCuda.check(false, false, () -> "no CUDA device: the CUDA driver sees no GPU"));
        assertEquals("no CUDA device: the CUDA driver sees no GPU", e.getMessage());
    }

    @Test
    void missingCudaFailsWhenRequired() {
        AssertionFailedError e = assertThrows(AssertionFailedError.class,
                () -> RequireCuda.check(false, true, () -> "no CUDA device: the CUDA driver sees no GPU"));
        assertEquals("anvil.requireCuda is set, but: no CUDA device: the CUDA driver sees no GPU", e.getMessage());
    }

    @Test
    void presentCudaPassesEitherWay() {
        assertDoesNotThrow(() -> RequireCuda.check(true, true, () -> "unused"));
        assertDoesNotThrow(() -> RequireCuda.check(true, false, () -> "unused"));
    }

    @Test
    void theSwitchIsTheSystemProperty() {
        String before = System.getProperty(RequireCuda.PROPERTY);
        try {
            System.setProperty(RequireCuda.PROPERTY, "true");
            assertThrows(AssertionFailedError.class, () -> RequireCuda.assume(false, () -> "why"));
            System.setProperty(RequireCuda.PROPERTY, "false");
            assertThrows(TestAbortedException.class, () -> RequireCuda.assume(false, () -> "why"));
        } finally {
            if (before == null) {
                System.clearProperty(RequireCuda.PROPERTY);
            } else {
                System.setProperty(RequireCuda.PROPERTY, before);
            }
        }
    }
}
