package dev.anvil.kernels.cpu;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.BFloat16;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the conformance suite cannot see from outside: that the CPU backend's BF16 buffers hold
 * bf16 values after every op (not just when downloaded), that FP32 outputs are not rounded, and
 * how BF16 host transfers and AdamW's master weights behave.
 */
class CpuBf16EmulationTest {

    private static final CpuBackend BACKEND = new CpuBackend(2);

    @AfterAll
    static void close() {
        BACKEND.close();
    }

    @Test
    void bf16HostTransfersAreTwoBytesPerElementAndRoundTripExactly() {
        short[] bits = {0x3f80, (short) 0xc000, 0x0001, (short) 0x7f80, 0x4049};
        CpuBuffer b = BACKEND.allocate(DType.BF16, bits.length);
        BACKEND.upload(b, MemorySegment.ofArray(bits));
        assertEquals(1f, b.floats()[0]);
        assertEquals(-2f, b.floats()[1]);
        short[] back = new short[bits.length];
        BACKEND.download(b, MemorySegment.ofArray(back));
        assertArrayEquals(bits, back);
        assertTrue(BACKEND.hostView(b).isEmpty(), "BF16 storage is widened floats: no 2-byte host view");
        assertTrue(BACKEND.hostView(BACKEND.allocate(DType.FP32, 3)).isPresent());
    }

    @Test
    void everyBf16OutputIsStoredAsBf16AndFp32OutputsAreNot() {
        int n = 7, c = 24, oc = 10;
        Random rnd = new Random(1);
        CpuBuffer inp = bf16(rnd, n * c), weight = bf16(rnd, oc * c), bias = bf16(rnd, oc);
        CpuBuffer out = BACKEND.allocate(DType.BF16, (long) n * oc);
        BACKEND.matmulForward(out, inp, weight, bias, n, c, oc);
        assertAllBf16(out);
        // the same inputs into an FP32 output (a mixed matmul) keep fp32 sums of bf16 products
        CpuBuffer wide = BACKEND.allocate(DType.FP32, (long) n * oc);
        CpuBuffer fp32Bias = BACKEND.allocate(DType.FP32, oc);
        BACKEND.copy(fp32Bias, fp32Copy(bias));
        BACKEND.matmulForward(wide, inp, weight, fp32Bias, n, c, oc);
        int unrounded = 0;
        for (int i = 0; i < n * oc; i++) {
            assertEquals(BFloat16.round(wide.floats()[i]), out.floats()[i], "element " + i);
            unrounded += BFloat16.round(wide.floats()[i]) != wide.floats()[i] ? 1 : 0;
        }
        assertTrue(unrounded > n * oc / 2, "FP32 outputs keep more than bf16's 8 bits");
        // a backward pass accumulating into BF16 gradients
        CpuBuffer dinp = bf16(rnd, n * c), dweight = bf16(rnd, oc * c), dbias = bf16(rnd, oc);
        BACKEND.matmulBackward(dinp, dweight, dbias, out, inp, weight, n, c, oc);
        assertAllBf16(dinp);
        assertAllBf16(dweight);
        assertAllBf16(dbias);
    }

    @Test
    void adamwUpdatesTheFp32MasterAndStoresItsRoundingInTheBf16Parameters() {
        int n = 1000;
        Random rnd = new Random(2);
        CpuBuffer params = bf16(rnd, n), grads = bf16(rnd, n);
        CpuBuffer master = BACKEND.allocate(DType.FP32, n);
        BACKEND.copy(master, fp32Copy(params));
        CpuBuffer m = BACKEND.allocate(DType.FP32, n), v = BACKEND.allocate(DType.FP32, n);
        float[] before = master.floats().clone();
        for (int step = 1; step <= 3; step++) {
            BACKEND.adamw(params, master, grads, m, v, new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 1f));
        }
        int moved = 0;
        for (int i = 0; i < n; i++) {
            assertEquals(BFloat16.round(master.floats()[i]), params.floats()[i], "params = bf16(master) at " + i);
            moved += master.floats()[i] != BFloat16.round(master.floats()[i]) ? 1 : 0;
        }
        // 3e-3 moves are below bf16's resolution for most weights: only the master keeps them
        assertTrue(moved > n / 2, "the master weights hold what bf16 cannot");
        assertNotEquals(before[0], master.floats()[0]);
        assertThrows(IllegalArgumentException.class,
                () -> BACKEND.adamw(params, null, grads, m, v, new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0f, 1, 1f)),
                "BF16 parameters without master weights");
    }

    private static CpuBuffer bf16(Random rnd, int n) {
        CpuBuffer b = BACKEND.allocate(DType.BF16, n);
        short[] bits = new short[n];
        for (int i = 0; i < n; i++) {
            bits[i] = BFloat16.fromFloat((float) rnd.nextGaussian());
        }
        BACKEND.upload(b, MemorySegment.ofArray(bits));
        return b;
    }

    /** An FP32 buffer with the values of a BF16 one. */
    private static Buffer fp32Copy(CpuBuffer bf16) {
        CpuBuffer f = BACKEND.allocate(DType.FP32, bf16.length());
        System.arraycopy(bf16.floats(), bf16.offset(), f.floats(), 0, (int) bf16.length());
        return f;
    }

    private static void assertAllBf16(CpuBuffer b) {
        for (int i = 0; i < b.length(); i++) {
            float x = b.floats()[b.offset() + i];
            assertEquals(Float.floatToRawIntBits(BFloat16.round(x)), Float.floatToRawIntBits(x),
                    b + " element " + i + " = " + x + " is not a bf16 value");
        }
    }
}
