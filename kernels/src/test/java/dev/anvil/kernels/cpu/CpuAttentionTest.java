package dev.anvil.kernels.cpu;

import dev.anvil.kernels.DType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Vector API dot and axpy of {@link CpuAttention} against its scalar loops, with head sizes
 * that are and are not whole vectors.
 */
class CpuAttentionTest {

    @Test
    void vectorPathMatchesScalarPathForwardAndBackward() {
        assumeTrue(Simd.available(), "jdk.incubator.vector is not available");
        for (int[] shape : new int[][] {{2, 9, 24, 2}, {1, 17, 128, 2}, {1, 5, 21, 3}}) {
            int b = shape[0], t = shape[1], c = shape[2], nh = shape[3];
            Random rnd = new Random(t);
            CpuBuffer qkv = random(rnd, b * t * 3 * c), dout = random(rnd, b * t * c);
            CpuBuffer dqkvStart = random(rnd, b * t * 3 * c);
            float[][] vector = run(true, qkv, dout, dqkvStart, b, t, c, nh);
            float[][] scalar = run(false, qkv, dout, dqkvStart, b, t, c, nh);
            String[] names = {"out", "lse", "dqkv"};
            for (int k = 0; k < names.length; k++) {
                for (int i = 0; i < vector[k].length; i++) {
                    assertEquals(scalar[k][i], vector[k][i], 1e-5f * (1 + Math.abs(scalar[k][i])),
                            names[k] + "[" + i + "] for shape " + java.util.Arrays.toString(shape));
                }
            }
        }
    }

    private static float[][] run(boolean simd, CpuBuffer qkv, CpuBuffer dout, CpuBuffer dqkvStart,
                                 int b, int t, int c, int nh) {
        CpuBuffer out = CpuBuffer.allocate(DType.FP32, b * t * c);
        CpuBuffer lse = CpuBuffer.allocate(DType.FP32, b * nh * t);
        CpuBuffer dqkv = CpuBuffer.allocate(DType.FP32, dqkvStart.length);
        System.arraycopy(dqkvStart.f, dqkvStart.offset, dqkv.f, 0, dqkvStart.length);
        try (WorkerPool pool = new WorkerPool(2)) {
            CpuAttention attention = new CpuAttention(pool, simd);
            attention.forward(out, lse, qkv, b, t, c, nh);
            attention.backward(dqkv, dout, qkv, out, lse, b, t, c, nh);
        }
        return new float[][] {out.f, lse.f, dqkv.f};
    }

    private static CpuBuffer random(Random rnd, int n) {
        CpuBuffer buf = CpuBuffer.allocate(DType.FP32, n + 1).slice(1, n);
        for (int i = 0; i < n; i++) {
            buf.f[buf.offset + i] = rnd.nextFloat() * 2 - 1;
        }
        return buf;
    }
}
