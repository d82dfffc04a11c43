package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * GELU with the tanh approximation (GPT-2's {@code gelu_new}), forward and backward. With the
 * Vector API, {@link Lanes} does the leading whole vectors of each chunk and the scalar loop the
 * rest (all of it without the Vector API).
 */
final class CpuGelu {

    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2.0 / Math.PI);
    private static final float K = 0.044715f;
    private static final int GRAIN = 1 << 14;

    private final WorkerPool pool;
    private final boolean simd;

    CpuGelu(WorkerPool pool) {
        this(pool, Simd.available());
    }

    /** {@code simd = false} keeps to the scalar loops (tests use it to check both). */
    CpuGelu(WorkerPool pool, boolean simd) {
        this.pool = pool;
        this.simd = simd;
    }

    void forward(CpuBuffer out, CpuBuffer inp, int n) {
        float[] o = out.f, x = inp.f;
        pool.forEach(n, GRAIN, (start, end) -> {
            int i = simd ? start + Lanes.forward(o, out.offset + start, x, inp.offset + start, end - start) : start;
            for (; i < end; i++) {
                float v = x[inp.offset + i];
                float u = SQRT_2_OVER_PI * (v + K * v * v * v);
                o[out.offset + i] = 0.5f * v * (1f + (float) Math.tanh(u));
            }
        });
    }

    void backward(CpuBuffer dinp, CpuBuffer inp, CpuBuffer dout, int n) {
        float[] dx = dinp.f, x = inp.f, dy = dout.f;
        pool.forEach(n, GRAIN, (start, end) -> {
            int i = simd ? start + Lanes.backward(dx, dinp.offset + start, x, inp.offset + start,
                    dy, dout.offset + start, end - start) : start;
            for (; i < end; i++) {
                float v = x[inp.offset + i];
                float u = SQRT_2_OVER_PI * (v + K * v * v * v);
                float th = (float) Math.tanh(u);
                float sech2 = 1f - th * th;
                float local = 0.5f * (1f + th) + 0.5f * v * sech2 * SQRT_2_OVER_PI * (1f + 3f * K * v * v);
                dx[dinp.offset + i] += local * dy[dout.offset + i];
            }
        });
    }

    /** The same formulas a vector at a time; each method returns how many leading elements it did. */
    private static final class Lanes {

        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

        static int forward(float[] o, int oo, float[] x, int xo, int len) {
            int bound = S.loopBound(len);
            for (int i = 0; i < bound; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, xo + i);
                FloatVector th = tanhArgument(v).lanewise(VectorOperators.TANH);
                v.mul(0.5f).mul(th.add(1f)).intoArray(o, oo + i);
            }
            return bound;
        }

        static int backward(float[] dx, int dxo, float[] x, int xo, float[] dy, int dyo, int len) {
            int bound = S.loopBound(len);
            for (int i = 0; i < bound; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, xo + i);
                FloatVector th = tanhArgument(v).lanewise(VectorOperators.TANH);
                FloatVector sech2 = th.mul(th).neg().add(1f);
                FloatVector dudx = v.mul(v).mul(3f * K).add(1f).mul(SQRT_2_OVER_PI);
                FloatVector local = th.add(1f).mul(0.5f).add(v.mul(0.5f).mul(sech2).mul(dudx));
                FloatVector.fromArray(S, dy, dyo + i).fma(local, FloatVector.fromArray(S, dx, dxo + i))
                        .intoArray(dx, dxo + i);
            }
            return bound;
        }

        /** {@code sqrt(2/π)·(x + 0.044715·x³)}. */
        private static FloatVector tanhArgument(FloatVector v) {
            return v.mul(v).mul(v).mul(K).add(v).mul(SQRT_2_OVER_PI);
        }
    }
}
