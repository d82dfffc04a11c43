package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal multi-head self-attention, forward and backward, in the flash-attention manner: the
 * forward pass keeps only each softmax row's log-sum-exp, and the backward pass recomputes the
 * probabilities from it, so memory stays O(T) per head instead of O(T²).
 *
 * <p>The work over a head's channels is {@link #dot} and {@link #axpy}; with the Vector API their
 * leading whole vectors go through {@link Lanes}.
 */
final class CpuAttention {

    private final WorkerPool pool;
    private final boolean simd;
    /** Per-thread row of scores or probabilities, sized for the longest sequence seen. */
    private final ThreadLocal<float[]> rows = ThreadLocal.withInitial(() -> new float[0]);

    CpuAttention(WorkerPool pool) {
        this(pool, Simd.available());
    }

    /** {@code simd = false} keeps to the scalar loops (tests use it to check both). */
    CpuAttention(WorkerPool pool, boolean simd) {
        this.pool = pool;
        this.simd = simd;
    }

    /** {@code Σ_i x[xo + i] · y[yo + i]} over {@code len} elements. */
    private float dot(float[] x, int xo, float[] y, int yo, int len) {
        int i = simd ? Lanes.bound(len) : 0;
        float sum = i > 0 ? Lanes.dot(x, xo, y, yo, i) : 0f;
        for (; i < len; i++) {
            sum += x[xo + i] * y[yo + i];
        }
        return sum;
    }

    /** {@code y[yo + i] += a · x[xo + i]} over {@code len} elements. */
    private void axpy(float a, float[] x, int xo, float[] y, int yo, int len) {
        int i = simd ? Lanes.bound(len) : 0;
        if (i > 0) {
            Lanes.axpy(a, x, xo, y, yo, i);
        }
        for (; i < len; i++) {
            y[yo + i] += a * x[xo + i];
        }
    }

    private float[] row(int t) {
        float[] r = rows.get();
        if (r.length < t) {
            r = new float[t];
            rows.set(r);
        }
        return r;
    }

    void forward(CpuBuffer out, CpuBuffer lse, CpuBuffer qkv, int b, int t, int c, int nh) {
        int hs = c / nh;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int c3 = 3 * c;
        float[] o = out.f, l = lse.f, x = qkv.f;
        // One task per (batch, head, query position): rows differ in cost (causal), the counter balances them.
        pool.forEach(b * nh * t, Math.max(1, t / 8), (start, end) -> {
            float[] p = row(t);
            for (int idx = start; idx < end; idx++) {
                int bb = idx / (nh * t);
                int h = (idx / t) % nh;
                int tq = idx % t;
                int base = qkv.offset + bb * t * c3;
                int q = base + tq * c3 + h * hs;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s <= tq; s++) {
                    int k = base + s * c3 + c + h * hs;
                    float dot = dot(x, q, x, k, hs) * scale;
                    p[s] = dot;
                    max = Math.max(max, dot);
                }
                float sum = 0f;
                for (int s = 0; s <= tq; s++) {
                    float e = (float) Math.exp(p[s] - max);
                    p[s] = e;
                    sum += e;
                }
                float inv = 1f / sum;
                int oo = out.offset + (bb * t + tq) * c + h * hs;
                java.util.Arrays.fill(o, oo, oo + hs, 0f);
                for (int s = 0; s <= tq; s++) {
                    axpy(p[s] * inv, x, base + s * c3 + 2 * c + h * hs, o, oo, hs);
                }
                l[lse.offset + (bb * nh + h) * t + tq] = max + (float) Math.log(sum);
            }
        });
    }

    void backward(CpuBuffer dqkv, CpuBuffer dout, CpuBuffer qkv, CpuBuffer out, CpuBuffer lse,
                  int b, int t, int c, int nh) {
        int hs = c / nh;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int c3 = 3 * c;
        float[] dx = dqkv.f, dy = dout.f, x = qkv.f, o = out.f, l = lse.f;
        // One task per (batch, head): keys and values of a head collect gradient from every query,
        // so a head's rows stay on one thread and no two threads write the same element.
        pool.forEach(b * nh, 1, (start, end) -> {
            float[] p = row(t);
            for (int bh = start; bh < end; bh++) {
                int bb = bh / nh;
                int h = bh % nh;
                int base = qkv.offset + bb * t * c3;
                int dbase = dqkv.offset + bb * t * c3;
                for (int tq = 0; tq < t; tq++) {
                    int q = base + tq * c3 + h * hs;
                    int dq = dbase + tq * c3 + h * hs;
                    int go = dout.offset + (bb * t + tq) * c + h * hs;
                    int oo = out.offset + (bb * t + tq) * c + h * hs;
                    float rowLse = l[lse.offset + bh * t + tq];
                    // D = Σ_s P[s]·dP[s] = dout · out
                    float dSum = dot(dy, go, o, oo, hs);
                    for (int s = 0; s <= tq; s++) {
                        int k = base + s * c3 + c + h * hs;
                        p[s] = (float) Math.exp(dot(x, q, x, k, hs) * scale - rowLse);
                    }
                    for (int s = 0; s <= tq; s++) {
                        int k = base + s * c3 + c + h * hs;
                        int v = k + c;
                        int dk = dbase + s * c3 + c + h * hs;
                        int dv = dk + c;
                        float dp = dot(dy, go, x, v, hs);
                        axpy(p[s], dy, go, dx, dv, hs);
                        float ds = p[s] * (dp - dSum) * scale;
                        axpy(ds, x, k, dx, dq, hs);
                        axpy(ds, x, q, dx, dk, hs);
                    }
                }
            }
        });
    }

    /** {@link #dot} and {@link #axpy} over a whole number of vectors. */
    private static final class Lanes {

        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

        static int bound(int len) {
            return S.loopBound(len);
        }

        static float dot(float[] x, int xo, float[] y, int yo, int len) {
            FloatVector acc = FloatVector.zero(S);
            for (int i = 0; i < len; i += S.length()) {
                acc = FloatVector.fromArray(S, x, xo + i).fma(FloatVector.fromArray(S, y, yo + i), acc);
            }
            return VectorMath.sum(acc);
        }

        static void axpy(float a, float[] x, int xo, float[] y, int yo, int len) {
            FloatVector va = FloatVector.broadcast(S, a);
            for (int i = 0; i < len; i += S.length()) {
                FloatVector.fromArray(S, x, xo + i).fma(va, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
            }
        }
    }
}
