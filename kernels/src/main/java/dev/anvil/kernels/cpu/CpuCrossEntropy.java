package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Fused softmax + cross-entropy: per-row loss, then (when training) the gradient written over the
 * logits in place, so the full-vocabulary probabilities are never stored beside the logits.
 *
 * <p>Each row makes three passes (max, sum of exponentials, gradient). With the Vector API the
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
                double sum = bulk > 0 ? Lanes.sumExp(z, zo, bulk, max) : 0.0;
                for (int i = bulk; i < v; i++) {
                    sum += FloatMath.exp(z[zo + i] - max);
                }
                double lse = max + Math.log(sum);
                loss[losses.offset + r] = (float) (lse - z[zo + target]);
                if (gradScale != 0f) {
                    float scale = (float) (gradScale / sum);
                    if (bulk > 0) {
                        Lanes.expScale(z, zo, bulk, max, scale);
                    }
                    for (int i = bulk; i < v; i++) {
                        z[zo + i] = FloatMath.exp(z[zo + i] - max) * scale;
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
         * Values summed in float before the block's total joins the double sum (keeps ~1e-7 relative):
         * a block's exponentials are staged in a scratch row, as the logits must stay for the gradient.
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

        static double sumExp(float[] z, int off, int len, float max) {
            float[] scratch = VectorMath.scratch();
            double sum = 0.0;
            for (int block = 0; block < len; block += BLOCK) {
                sum += VectorMath.exp(z, off + block, Math.min(BLOCK, len - block), 1f, max, scratch, 0);
            }
            return sum;
        }

        /** {@code z = exp(z - max) · scale}. */
        static void expScale(float[] z, int off, int len, float max, float scale) {
            VectorMath.exp(z, off, len, 1f, max, z, off);
            for (int i = 0; i < len; i += S.length()) {
                FloatVector.fromArray(S, z, off + i).mul(scale).intoArray(z, off + i);
            }
        }
    }
}
