package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * GELU with the tanh approximation (GPT-2's {@code gelu_new}), forward and backward. With the
 * Vector API, {@link Lanes} does the leading whole vectors of each chunk and the scalar loop the
 * rest (all of it without the Vector API), with the same operations in the same order.
 *
 * <p>With {@code e = exp(2u)}: {@code (1 + tanh u)/2 = e/(e+1)} and {@code sech²u = 4e/(e+1)²}.
 * These keep full relative precision where {@code 1 - tanh²u} would cancel.
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
                float e = FloatMath.exp(2f * ((v * v * v * K + v) * SQRT_2_OVER_PI));
                o[out.offset + i] = v * (e / (e + 1f));
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
                float e = FloatMath.exp(2f * ((v * v * v * K + v) * SQRT_2_OVER_PI));
                float inv = 1f / (e + 1f);
                float half = e * inv; // (1 + tanh u)/2
                float dudx = (v * v * (3f * K) + 1f) * SQRT_2_OVER_PI;
                float local = half + 2f * v * half * inv * dudx; // sech²u = 4·half·inv
                dx[dinp.offset + i] = Math.fma(dy[dout.offset + i], local, dx[dinp.offset + i]);
            }
        });
    }

    /**
     * The same formulas a vector at a time; each method returns how many leading elements it did. The
     * exponentials {@code e} of a run of at most {@link VectorMath#SCRATCH_LENGTH} values are staged in
     * a scratch row between the passes, all in L1.
     */
    private static final class Lanes {

        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

        static int forward(float[] o, int oo, float[] x, int xo, int len) {
            int bound = S.loopBound(len);
            float[] e = VectorMath.scratch();
            for (int run = 0; run < bound; run += VectorMath.SCRATCH_LENGTH) {
                int n = Math.min(VectorMath.SCRATCH_LENGTH, bound - run);
                twoU(x, xo + run, n, e);
                for (int i = 0; i < n; i += S.length()) {
                    FloatVector v = FloatVector.fromArray(S, x, xo + run + i);
                    FloatVector ei = FloatVector.fromArray(S, e, i);
                    v.mul(ei.div(ei.add(1f))).intoArray(o, oo + run + i);
                }
            }
            return bound;
        }

        static int backward(float[] dx, int dxo, float[] x, int xo, float[] dy, int dyo, int len) {
            int bound = S.loopBound(len);
            float[] e = VectorMath.scratch();
            FloatVector one = FloatVector.broadcast(S, 1f);
            for (int run = 0; run < bound; run += VectorMath.SCRATCH_LENGTH) {
                int n = Math.min(VectorMath.SCRATCH_LENGTH, bound - run);
                twoU(x, xo + run, n, e);
                for (int i = 0; i < n; i += S.length()) {
                    int at = run + i;
                    FloatVector v = FloatVector.fromArray(S, x, xo + at);
                    FloatVector ei = FloatVector.fromArray(S, e, i);
                    FloatVector inv = one.div(ei.add(1f));
                    FloatVector half = ei.mul(inv);
                    FloatVector dudx = v.mul(v).mul(3f * K).add(1f).mul(SQRT_2_OVER_PI);
                    FloatVector local = half.add(v.mul(2f).mul(half).mul(inv).mul(dudx));
                    FloatVector.fromArray(S, dy, dyo + at).fma(local, FloatVector.fromArray(S, dx, dxo + at))
                            .intoArray(dx, dxo + at);
                }
            }
            return bound;
        }

        /**
         * {@code e[i] = e^(2u)} with {@code u = sqrt(2/π)·(x + 0.044715·x³)} for {@code n} values from
         * {@code x[xo]}, in the scalar loop's order.
         */
        private static void twoU(float[] x, int xo, int n, float[] e) {
            for (int i = 0; i < n; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, xo + i);
                v.mul(v).mul(v).mul(K).add(v).mul(SQRT_2_OVER_PI).mul(2f).intoArray(e, i);
            }
            // exp(y·1 - 0) is exp(y) exactly
            VectorMath.exp(e, 0, n, 1f, 0f, e, 0);
        }
    }
}
