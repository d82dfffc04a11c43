package dev.anvil.kernels.cpu;

import dev.anvil.kernels.AdamWStep;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The AdamW update of {@code torch.optim.AdamW}, and the sum of squares for gradient clipping
 * (at memory speed: several partial sums at once, whole vectors with the Vector API).
 * With the Vector API, {@link Lanes} updates whole vectors with the scalar loop's operations in the
 * scalar loop's order (no fused multiply-adds), so both give the same bits.
 */
final class CpuAdamW {

    private static final int GRAIN = 1 << 15;

    private final WorkerPool pool;
    private final boolean simd;
    private double[] partials = new double[0];

    CpuAdamW(WorkerPool pool) {
        this(pool, Simd.available());
    }

    /** {@code simd = false} keeps to the scalar loop (tests use it to check both). */
    CpuAdamW(WorkerPool pool, boolean simd) {
        this.pool = pool;
        this.simd = simd;
    }

    void update(CpuBuffer params, CpuBuffer grads, CpuBuffer m, CpuBuffer v, AdamWStep s) {
        float[] p = params.f, g = grads.f, mm = m.f, vv = v.f;
        float b1 = s.beta1(), b2 = s.beta2();
        // PyTorch computes the bias corrections in double precision, then steps in fp32.
        double bc1 = 1.0 - Math.pow(b1, s.step());
        double bc2 = 1.0 - Math.pow(b2, s.step());
        float stepSize = (float) (s.lr() / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        float decay = 1f - s.lr() * s.weightDecay();
        float eps = s.eps(), scale = s.gradScale();
        int n = (int) params.length();
        pool.forEach(n, GRAIN, (start, end) -> {
            int i = start;
            if (simd) {
                i += Lanes.update(p, params.offset + start, g, grads.offset + start, mm, m.offset + start,
                        vv, v.offset + start, end - start, s, decay, bc2Sqrt, stepSize);
            }
            for (; i < end; i++) {
                float grad = g[grads.offset + i] * scale;
                float mi = mm[m.offset + i] + (grad - mm[m.offset + i]) * (1f - b1);
                float vi = vv[v.offset + i] * b2 + (1f - b2) * grad * grad;
                mm[m.offset + i] = mi;
                vv[v.offset + i] = vi;
                float pi = p[params.offset + i] * decay;
                float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
                p[params.offset + i] = pi - stepSize * (mi / denom);
            }
        });
    }

    /**
     * {@code Σ a[i]²} over {@code [start, end)} in double precision, in four interleaved sums (one
     * chain of dependent adds would wait on the adder's latency, not on memory).
     */
    private static double sumOfSquares(float[] a, int start, int end) {
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        int i = start;
        for (; i + 4 <= end; i += 4) {
            double d0 = a[i], d1 = a[i + 1], d2 = a[i + 2], d3 = a[i + 3];
            s0 += d0 * d0;
            s1 += d1 * d1;
            s2 += d2 * d2;
            s3 += d3 * d3;
        }
        for (; i < end; i++) {
            double d = a[i];
            s0 += d * d;
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** The update over whole vectors; returns how many leading elements it did. */
    private static final class Lanes {

        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

        static int update(float[] p, int po, float[] g, int go, float[] m, int mo, float[] v, int vo, int len,
                          AdamWStep s, float decay, float bc2Sqrt, float stepSize) {
            float scale = s.gradScale(), b1 = s.beta1(), b2 = s.beta2(), eps = s.eps();
            int bound = S.loopBound(len);
            for (int i = 0; i < bound; i += S.length()) {
                FloatVector grad = FloatVector.fromArray(S, g, go + i).mul(scale);
                FloatVector mOld = FloatVector.fromArray(S, m, mo + i);
                FloatVector mi = mOld.add(grad.sub(mOld).mul(1f - b1));
                FloatVector vi = FloatVector.fromArray(S, v, vo + i).mul(b2).add(grad.mul(1f - b2).mul(grad));
                mi.intoArray(m, mo + i);
                vi.intoArray(v, vo + i);
                FloatVector pi = FloatVector.fromArray(S, p, po + i).mul(decay);
                FloatVector denom = vi.sqrt().div(bc2Sqrt).add(eps);
                pi.sub(mi.div(denom).mul(stepSize)).intoArray(p, po + i);
            }
            return bound;
        }

        /**
         * Doubles of the preferred width: a vector of {@link #S} floats widens into two of them. Not a
         * float species of half the width: a second FloatVector shape in the JVM makes the Vector
         * API's shared code see two vector classes, and C2 then fails to intrinsify some compiles of
         * other ops (depending on compile order), which then allocate every vector they touch.
         */
        private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

        /**
         * {@code Σ a[i]²} over {@code [start, end)} in double precision: two vectors of partial
         * sums, one for each half of a vector of floats (lane order fixed, so the result is too),
         * then the tail one by one.
         */
        static double sumOfSquares(float[] a, int start, int end) {
            int step = S.length();
            DoubleVector s0 = DoubleVector.zero(D), s1 = DoubleVector.zero(D);
            int i = start;
            for (; i + step <= end; i += step) {
                FloatVector f = FloatVector.fromArray(S, a, i);
                DoubleVector d0 = (DoubleVector) f.convertShape(VectorOperators.F2D, D, 0);
                DoubleVector d1 = (DoubleVector) f.convertShape(VectorOperators.F2D, D, 1);
                s0 = s0.add(d0.mul(d0));
                s1 = s1.add(d1.mul(d1));
            }
            double sum = 0.0;
            DoubleVector s = s0.add(s1);
            for (int l = 0; l < D.length(); l++) {
                sum += s.lane(l);
            }
            for (; i < end; i++) {
                double d = a[i];
                sum += d * d;
            }
            return sum;
        }
    }

    double sumOfSquares(CpuBuffer x) {
        float[] a = x.f;
        int n = (int) x.length();
        // Chunking depends on n only, so the sum is the same whatever the thread count.
        int chunks = n / GRAIN + 1;
        int per = (n + chunks - 1) / chunks;
        if (partials.length < chunks) {
            partials = new double[chunks];
        }
        double[] part = partials;
        pool.forEach(chunks, 1, (k0, k1) -> {
            for (int k = k0; k < k1; k++) {
                int start = x.offset + k * per, end = x.offset + Math.min(n, (k + 1) * per);
                part[k] = simd ? Lanes.sumOfSquares(a, start, end) : sumOfSquares(a, start, end);
            }
        });
        double total = 0.0;
        for (int k = 0; k < chunks; k++) {
            total += part[k];
        }
        return total;
    }
}
