package dev.anvil.kernels.cpu;

/**
 * Fused softmax + cross-entropy: per-row loss, then (when training) the gradient written over the
 * logits in place, so the full-vocabulary probabilities are never stored beside the logits.
 */
final class CpuCrossEntropy {

    private final WorkerPool pool;

    CpuCrossEntropy(WorkerPool pool) {
        this.pool = pool;
    }

    void forwardBackward(CpuBuffer losses, CpuBuffer logits, CpuBuffer targets, int n, int v, int vp,
                         float gradScale) {
        float[] z = logits.f, loss = losses.f;
        int[] tgt = targets.i;
        pool.forEach(n, 1, (start, end) -> {
            for (int r = start; r < end; r++) {
                int target = tgt[targets.offset + r];
                if (target < 0 || target >= v) {
                    throw new IllegalArgumentException("target " + target + " at position " + r
                            + " is outside the vocabulary [0, " + v + ")");
                }
                int zo = logits.offset + r * vp;
                float max = Float.NEGATIVE_INFINITY;
                for (int i = 0; i < v; i++) {
                    max = Math.max(max, z[zo + i]);
                }
                double sum = 0.0;
                for (int i = 0; i < v; i++) {
                    sum += Math.exp(z[zo + i] - max);
                }
                double lse = max + Math.log(sum);
                loss[losses.offset + r] = (float) (lse - z[zo + target]);
                if (gradScale != 0f) {
                    float inv = (float) (1.0 / sum);
                    for (int i = 0; i < v; i++) {
                        z[zo + i] = (float) Math.exp(z[zo + i] - max) * inv * gradScale;
                    }
                    z[zo + target] -= gradScale;
                    for (int i = v; i < vp; i++) {
                        z[zo + i] = 0f;
                    }
                }
            }
        });
    }
}
