package dev.anvil.engine.optim;

import dev.anvil.engine.model.GptModel;

import java.util.concurrent.CompletableFuture;

/**
 * What the training loop asks of an optimizer once a step's gradients are complete: their global
 * norm, the clipping factor, and the update. {@link AdamW} updates every weight on this process; a
 * sharded optimizer ({@link dev.anvil.engine.zero.ShardedOptimizer}) updates this rank's shard and
 * gathers the rest from the other ranks.
 */
public interface Optimizer {

    /** The global L2 norm of {@code model}'s gradients, the same on every data-parallel rank. */
    float gradientNorm(GptModel model);

    /** The factor gradients are scaled by before the update, from their global norm. */
    float clipScale(float norm);

    /** One update of {@code model}'s weights from its gradients, first scaled by {@code gradScale}. */
    void step(GptModel model, float lr, float gradScale);

    /**
     * One update clipped by the gradients' global norm, which the future holds; a non-finite norm
     * makes no update. By default the norm is computed first, waiting for it, then the update is
     * made; an optimizer whose backend can keep the norm and the factor to itself (a whole-buffer
     * {@link AdamW}) queues everything and returns at once.
     */
    default CompletableFuture<Float> stepClipped(GptModel model, float lr) {
        float norm = gradientNorm(model);
        if (Float.isFinite(norm)) {
            step(model, lr, clipScale(norm));
        }
        return CompletableFuture.completedFuture(norm);
    }

    /** Bytes of optimizer state this process holds on the backend (moments, and master weights it keeps). */
    long stateBytes();
}
