package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The tensor-core attention kernels against the FMA ones, both on the GPU, on the shapes where
 * tiling goes wrong: sequences of 1, of one row short of and past a 64-row tile, long ones, head
 * sizes 64 and 128, several heads and batches. Inputs are fresh random bf16 values, outputs are
 * poisoned with NaN first (an element the kernels skip shows), and the backward pass adds into
 * random gradients. GPU only; skipped elsewhere (failed under {@code -Danvil.requireCuda=true}).
 */
class TensorCoreAttentionTest {

    /** {b, t, c, nh}: head sizes 64 and 128 (c / nh). */
    private static final int[][] SHAPES = {{1, 1, 128, 2}, {2, 63, 128, 2}, {1, 65, 256, 4}, {2, 130, 64, 1},
            {1, 1, 128, 1}, {2, 33, 256, 2}, {1, 127, 256, 2}, {1, 200, 512, 4}, {1, 1024, 1024, 8}};
    /** Relative norm error allowed between the paths: bf16 operands and P rounded to bf16 on the tensor cores. */
    private static final double TOLERANCE = 1e-2;

    private static CudaBackend tc;
    private static CudaBackend fma;
    private final Random random = new Random(13);

    @BeforeAll
    static void open() {
        if (CudaBackend.isAvailable()) {
            tc = CudaBackend.open();
            fma = CudaBackend.open(CudaOptions.defaults().withAttention(AttentionKernels.FMA));
        }
    }

    @BeforeEach
    void requireGpu() {
        RequireCuda.assume(tc != null, () -> CudaBackend.unavailableReason().orElse("the CUDA backend did not open"));
        assertTrue(tc.description().contains("tensor-core attention"), tc.description());
        assertTrue(fma.description().contains("FMA attention"), fma.description());
    }

    @AfterAll
    static void close() {
        if (tc != null) {
            tc.close();
            fma.close();
        }
    }

    @Test
    void forwardAndBackwardMatchTheFmaKernels() {
        for (int[] s : SHAPES) {
            int b = s[0], t = s[1], c = s[2], nh = s[3];
            String shape = " [b=" + b + ", t=" + t + ", c=" + c + ", nh=" + nh + "]";
            long btc = (long) b * t * c, rows = (long) b * nh * t;
            float[] qkv = gaussian(3 * btc, 1.5f), dout = gaussian(btc, 1f), dqkv0 = gaussian(3 * btc, 1f);

            float[][] outs = new float[2][], lses = new float[2][], grads = new float[2][];
            CudaBackend[] backends = {tc, fma};
            for (int k = 0; k < 2; k++) {
                CudaBackend g = backends[k];
                try (Buffer x = bf16(g, qkv); Buffer o = bf16(g, nans(btc)); Buffer l = fp32(g, nans(rows));
                     Buffer dO = bf16(g, dout); Buffer dx = bf16(g, dqkv0)) {
                    g.attentionForward(o, l, x, b, t, c, nh);
                    g.attentionBackward(dx, dO, x, o, l, b, t, c, nh);
                    outs[k] = read(g, o);
                    lses[k] = read(g, l);
                    grads[k] = read(g, dx);
                }
            }
            assertNear("out" + shape, outs[1], outs[0], TOLERANCE);
            assertNear("lse" + shape, lses[1], lses[0], 1e-3);
            assertNear("dqkv" + shape, grads[1], grads[0], TOLERANCE);
        }
    }

    @Test
    void backwardIsTheSameOnEveryRun() {
        int b = 2, t = 300, c = 256, nh = 2;
        long btc = (long) b * t * c;
        float[] qkv = gaussian(3 * btc, 1.5f), dout = gaussian(btc, 1f);
        float[][] runs = new float[2][];
        for (int r = 0; r < 2; r++) {
            try (Buffer x = bf16(tc, qkv); Buffer o = bf16(tc, new float[(int) btc]);
                 Buffer l = fp32(tc, new float[b * nh * t]); Buffer dO = bf16(tc, dout);
                 Buffer dx = bf16(tc, new float[(int) (3 * btc)])) {
                tc.attentionForward(o, l, x, b, t, c, nh);
                tc.attentionBackward(dx, dO, x, o, l, b, t, c, nh);
                runs[r] = read(tc, dx);
            }
        }
        assertArrayEquals(runs[0], runs[1], "dqkv differs between two runs on the same inputs");
    }

    private float[] gaussian(long n, float scale) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) random.nextGaussian() * scale;
        }
        return a;
    }

    private static float[] nans(long n) {
        float[] a = new float[Math.toIntExact(n)];
        java.util.Arrays.fill(a, Float.NaN);
        return a;
    }

    private static Buffer fp32(CudaBackend g, float[] data) {
        Buffer b = g.allocate(DType.FP32, data.length);
        g.upload(b, MemorySegment.ofArray(data));
        return b;
    }

    private static Buffer bf16(CudaBackend g, float[] data) {
        Buffer b = g.allocate(DType.BF16, data.length);
        try (Buffer tmp = fp32(g, data)) {
            g.convert(b, tmp);
        }
        return b;
    }

    private static float[] read(CudaBackend g, Buffer b) {
        float[] out = new float[Math.toIntExact(b.length())];
        if (b.dtype() == DType.FP32) {
            g.download(b, MemorySegment.ofArray(out));
        } else {
            try (Buffer tmp = g.allocate(DType.FP32, b.length())) {
                g.convert(tmp, b);
                g.download(tmp, MemorySegment.ofArray(out));
            }
        }
        return out;
    }

    /** ‖got − want‖ / ‖want‖ within {@code tol}, and every element finite. */
    private static void assertNear(String what, float[] want, float[] got, double tol) {
        double err = 0, norm = 0;
        for (int i = 0; i < want.length; i++) {
            if (!Float.isFinite(got[i])) {
                fail(what + "[" + i + "] is " + got[i] + " (FMA path: " + want[i] + ")");
            }
            err += (got[i] - want[i]) * (double) (got[i] - want[i]);
            norm += want[i] * (double) want[i];
        }
        double rel = Math.sqrt(err / Math.max(norm, 1e-30));
        assertTrue(rel <= tol, what + ": relative error " + rel + " > " + tol);
    }
}
