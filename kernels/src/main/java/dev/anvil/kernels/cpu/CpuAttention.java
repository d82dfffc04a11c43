package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal multi-head self-attention, forward and backward, in the flash-attention manner: the
 * forward pass keeps only each softmax row's log-sum-exp, and the backward pass recomputes the
 * probabilities from it, so memory stays O(T) per head instead of O(T²).
 *
 * <p>One task per (batch, head), each on one thread: a head's queries run in blocks of
 * {@value #QUERY_BLOCK}, and every product of a block (scores {@code Q·Kᵀ}, output {@code P·V},
 * and backward {@code dO·Vᵀ}, {@code Pᵀ·dO}, {@code dS·K}, {@code dSᵀ·Q}) goes through the
 * thread's own single-threaded {@link Gemm}, reading the heads straight out of the strided
 * {@code qkv} buffers; a block's keys stop at its last query, so the masked half is skipped.
 * Keys and values of a head collect gradient from every query block in order on one thread, so
 * the result does not depend on the thread count. Exponentials come from {@link FloatMath} and
 * its lane-wise twin, so results do not depend on the JIT either.
 */
final class CpuAttention {

    /** Queries per block: a multiple of every kernel's tile height, rows of a thread's scratch. */
    static final int QUERY_BLOCK = 96;

    private final WorkerPool pool;
    private final boolean simd;
    /** Per-thread products and score rows, sized for the longest sequence seen. */
    private final ThreadLocal<Head> heads;

    CpuAttention(WorkerPool pool) {
        this(pool, Simd.available());
    }

    /** {@code simd = false} keeps to the scalar kernel and loops (tests use it to check both). */
    CpuAttention(WorkerPool pool, boolean simd) {
        this.pool = pool;
        this.simd = simd;
        this.heads = ThreadLocal.withInitial(() -> new Head(simd));
    }

    /** A thread's serial GEMM and its {@code QUERY_BLOCK × t} score and score-gradient blocks. */
    private static final class Head {
        final Gemm gemm;
        float[] p = new float[0];
        float[] dp = new float[0];

        Head(boolean simd) {
            // A pool of one thread runs every loop on its caller: this task's thread.
            gemm = new Gemm(new WorkerPool(1), MicroKernel.of(simd));
        }

        Head fit(int t) {
            if (p.length < QUERY_BLOCK * t) {
                p = new float[QUERY_BLOCK * t];
                dp = new float[QUERY_BLOCK * t];
            }
            return this;
        }
    }

    void forward(CpuBuffer out, CpuBuffer lse, CpuBuffer qkv, int b, int t, int c, int nh) {
        int hs = c / nh;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int c3 = 3 * c;
        float[] x = qkv.f, o = out.f, l = lse.f;
        pool.forEach(b * nh, 1, (start, end) -> {
            Head head = heads.get().fit(t);
            float[] p = head.p;
            for (int bh = start; bh < end; bh++) {
                int bb = bh / nh, h = bh % nh;
                int q = qkv.offset + bb * t * c3 + h * hs, k = q + c, v = q + 2 * c;
                for (int q0 = 0; q0 < t; q0 += QUERY_BLOCK) {
                    int rows = Math.min(QUERY_BLOCK, t - q0), keys = q0 + rows;
                    // S[i, s] = Q[q0 + i] · K[s] for the block's rows and the keys they may see
                    head.gemm.multiply(rows, keys, hs, x, q + q0 * c3, c3, 1, x, k, 1, c3, p, 0, keys, false);
                    for (int i = 0; i < rows; i++) {
                        l[lse.offset + bh * t + q0 + i] = softmaxRow(p, i * keys, q0 + i + 1, keys, scale);
                    }
                    // O[q0 + i] = Σ_s P[i, s] · V[s]
                    head.gemm.multiply(rows, hs, keys, p, 0, keys, 1, x, v, c3, 1,
                            o, out.offset + (bb * t + q0) * c + h * hs, c, false);
                }
            }
        });
    }

    /**
     * Turns scores {@code z[off, off + seen)} into probabilities in place, scaled by
     * {@code scale} first, zeroes the masked rest of the row up to {@code len}, and returns the
     * row's log-sum-exp.
     */
    private float softmaxRow(float[] z, int off, int seen, int len, float scale) {
        int bulk = simd ? Lanes.bound(seen) : 0;
        float max = bulk > 0 ? Lanes.max(z, off, bulk) : Float.NEGATIVE_INFINITY;
        for (int s = bulk; s < seen; s++) {
            max = Math.max(max, z[off + s]);
        }
        float shift = max * scale;
        float sum = bulk > 0 ? VectorMath.exp(z, off, bulk, scale, shift, z, off) : 0f;
        for (int s = bulk; s < seen; s++) {
            float e = FloatMath.exp(z[off + s] * scale - shift);
            z[off + s] = e;
            sum += e;
        }
        float inv = 1f / sum;
        if (bulk > 0) {
            Lanes.scale(z, off, bulk, inv);
        }
        for (int s = bulk; s < seen; s++) {
            z[off + s] *= inv;
        }
        java.util.Arrays.fill(z, off + seen, off + len, 0f);
        return shift + (float) Math.log(sum);
    }

    void backward(CpuBuffer dqkv, CpuBuffer dout, CpuBuffer qkv, CpuBuffer out, CpuBuffer lse,
                  int b, int t, int c, int nh) {
        int hs = c / nh;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int c3 = 3 * c;
        float[] dx = dqkv.f, dy = dout.f, x = qkv.f, o = out.f, l = lse.f;
        pool.forEach(b * nh, 1, (start, end) -> {
            Head head = heads.get().fit(t);
            float[] p = head.p, dp = head.dp;
            for (int bh = start; bh < end; bh++) {
                int bb = bh / nh, h = bh % nh;
                int q = qkv.offset + bb * t * c3 + h * hs, k = q + c, v = q + 2 * c;
                int dq = dqkv.offset + bb * t * c3 + h * hs, dk = dq + c, dv = dq + 2 * c;
                int go = dout.offset + bb * t * c + h * hs, oo = out.offset + bb * t * c + h * hs;
                for (int q0 = 0; q0 < t; q0 += QUERY_BLOCK) {
                    int rows = Math.min(QUERY_BLOCK, t - q0), keys = q0 + rows;
                    head.gemm.multiply(rows, keys, hs, x, q + q0 * c3, c3, 1, x, k, 1, c3, p, 0, keys, false);
                    // dP[i, s] = dO[q0 + i] · V[s]
                    head.gemm.multiply(rows, keys, hs, dy, go + q0 * c, c, 1, x, v, 1, c3, dp, 0, keys, false);
                    for (int i = 0; i < rows; i++) {
                        int row = q0 + i;
                        // D = Σ_s P[s]·dP[s] = dO · O
                        float dSum = dot(dy, go + row * c, o, oo + row * c, hs);
                        scoreGradientRow(p, dp, i * keys, row + 1, keys, scale, l[lse.offset + bh * t + row], dSum);
                    }
                    // dV[s] += Σ_i P[i, s] · dO[q0 + i]
                    head.gemm.multiply(keys, hs, rows, p, 0, 1, keys, dy, go + q0 * c, c, 1, dx, dv, c3, true);
                    // dQ[q0 + i] += Σ_s dS[i, s] · K[s]
                    head.gemm.multiply(rows, hs, keys, dp, 0, keys, 1, x, k, c3, 1, dx, dq + q0 * c3, c3, true);
                    // dK[s] += Σ_i dS[i, s] · Q[q0 + i]
                    head.gemm.multiply(keys, hs, rows, dp, 0, 1, keys, x, q + q0 * c3, c3, 1, dx, dk, c3, true);
                }
            }
        });
    }

    /**
     * Recomputes a row's probabilities {@code P = exp(S·scale - lse)} into {@code p} and turns
     * {@code dp} into the score gradient {@code dS = P·(dP - D)·scale}, both zero past the
     * {@code seen} keys the row may attend to.
     */
    private void scoreGradientRow(float[] p, float[] dp, int off, int seen, int len, float scale, float lse,
                                  float dSum) {
        int bulk = simd ? Lanes.bound(seen) : 0;
        if (bulk > 0) {
            Lanes.scoreGradient(p, dp, off, bulk, scale, lse, dSum);
        }
        for (int s = bulk; s < seen; s++) {
            float pr = FloatMath.exp(p[off + s] * scale - lse);
            p[off + s] = pr;
            dp[off + s] = pr * (dp[off + s] - dSum) * scale;
        }
        java.util.Arrays.fill(p, off + seen, off + len, 0f);
        java.util.Arrays.fill(dp, off + seen, off + len, 0f);
    }

    private float dot(float[] x, int xo, float[] y, int yo, int len) {
        float sum = 0f;
        for (int i = 0; i < len; i++) {
            sum = Math.fma(x[xo + i], y[yo + i], sum);
        }
        return sum;
    }

    /** The Vector API passes over the first {@code len} (a whole number of vectors) of a row. */
    private static final class Lanes {

        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

        static int bound(int len) {
            return S.loopBound(len);
        }

        static float max(float[] z, int off, int len) {
            FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < len; i += S.length()) {
                acc = acc.max(FloatVector.fromArray(S, z, off + i));
            }
            return acc.reduceLanes(jdk.incubator.vector.VectorOperators.MAX);
        }

        static void scale(float[] z, int off, int len, float factor) {
            for (int i = 0; i < len; i += S.length()) {
                FloatVector.fromArray(S, z, off + i).mul(factor).intoArray(z, off + i);
            }
        }

        static void scoreGradient(float[] p, float[] dp, int off, int len, float scale, float lse, float dSum) {
            VectorMath.exp(p, off, len, scale, lse, p, off);
            for (int i = 0; i < len; i += S.length()) {
                FloatVector pr = FloatVector.fromArray(S, p, off + i);
                pr.mul(FloatVector.fromArray(S, dp, off + i).sub(dSum)).mul(scale).intoArray(dp, off + i);
            }
        }
    }
}
