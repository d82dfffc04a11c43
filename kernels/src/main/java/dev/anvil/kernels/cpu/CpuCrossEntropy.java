package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Fused softmax + cross-entropy: per-row loss, then (when training) the gradient written over the
 * logits in place, so the full-vocabulary probabilities are never stored beside the logits.
 *
 * <p>Each row makes three passes (max; sum of exponentials, each kept in place of its logit when
 * training; gradient, a scaling of those). A row of the vocabulary fits in L2, so only the first
 * pass waits on memory, and each logit costs one exponential. With the Vector API the
 * leading whole vectors of a row go through {@link Lanes}; the scalar loops finish the row, or do
 * all of it without the Vector API. Exponentials come from {@link FloatMath} and its lane-wise
 * twin, so results do not depend on the JIT.
 */
final class CpuCrossEntropy {

    private final WorkerPool pool;
    private final boolean simd;

    CpuCrossEntropy(WorkerPool pool) {
        this(pool, Simd.available());
    }

    /** {@code simd = false} keeps to the scalar loops (tests use it to check both). */
    CpuCrossEntropy(WorkerPool pool, boolean simd) {
        this.pool = pool;
        this.simd = simd;
    }

    void forwardBackward(CpuBuffer losses, CpuBuffer logits, CpuBuffer targets, int n, int v, int vp,
                         float gradScale) {
        float[] z = logits.f, loss = losses.f;
        int[] tgt = targets.i;
        int bulk = simd ? Lanes.bound(v) : 0;
        pool.forEach(n, 1, (start, end) -> {
            for (int r = start; r < end; r++) {
                int target = tgt[targets.offset + r];
                if (target < 0 || target >= v) {
                    throw new IllegalArgumentException("target " + target + " at position " + r
                            + " is outside the vocabulary [0, " + v + ")");
                }
                int zo = logits.offset + r * vp;
                float max = bulk > 0 ? Lanes.max(z, zo, bulk) : Float.NEGATIVE_INFINITY;
                for (int i = bulk; i < v; i++) {
                    max = Math.max(max, z[zo + i]);
                }
                float zt = z[zo + target];
                // Training keeps each exp(z - max) in place of its logit, so the gradient is a scaling.
                boolean keep = gradScale != 0f;
                double sum = bulk > 0 ? Lanes.sumExp(z, zo, bulk, max, keep) : 0.0;
                for (int i = bulk; i < v; i++) {
                    float e = FloatMath.exp(z[zo + i] - max);
                    if (keep) {
                        z[zo + i] = e;
                    }
                    sum += e;
                }
                double lse = max + Math.log(sum);
                loss[losses.offset + r] = (float) (lse - zt);
                if (keep) {
                    float scale = (float) (gradScale / sum);
                    if (bulk > 0) {
                        Lanes.scale(z, zo, bulk, scale);
                    }
                    for (int i = bulk; i < v; i++) {
                        z[zo + i] *= scale;
                    }
                    z[zo + target] -= gradScale;
                    java.util.Arrays.fill(z, zo + v, zo + vp, 0f);
                }
            }
        });
    }

    /** The Vector API passes over the first {@code len} (a whole number of vectors) of a row. */
    private static final class Lanes {

        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        /**
         * Values summed in float before the block's total joins the double sum (keeps ~1e-7 relative);
         * one scratch row holds a block when the logits must stay as they were.
         */
        private static final int BLOCK = VectorMath.SCRATCH_LENGTH;

        static int bound(int len) {
            return S.loopBound(len);
        }

        static float max(float[] z, int off, int len) {
            FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < len; i += S.length()) {
                acc = acc.max(FloatVector.fromArray(S, z, off + i));
            }
            return acc.reduceLanes(VectorOperators.MAX);
        }

        /**
         * {@code Σ exp(z - max)}; with {@code keep} each {@code exp(z - max)} is stored over its
         * {@code z}, else staged in a scratch row (the logits stay as they were).
         */
        static double sumExp(float[] z, int off, int len, float max, boolean keep) {
            float[] scratch = VectorMath.scratch();
            double sum = 0.0;
            for (int block = 0; block < len; block += BLOCK) {
                int at = off + block, n = Math.min(BLOCK, len - block);
                sum += keep ? VectorMath.exp(z, at, n, 1f, max, z, at) : VectorMath.exp(z, at, n, 1f, max, scratch, 0);
            }
            return sum;
        }

        /** {@code z = z · scale}. */
        static void scale(float[] z, int off, int len, float scale) {
            for (int i = 0; i < len; i += S.length()) {
                FloatVector.fromArray(S, z, off + i).mul(scale).intoArray(z, off + i);
            }
        }
    }
}
