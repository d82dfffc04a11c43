package dev.anvil.engine.optim;

import dev.anvil.engine.model.GptModel;

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

    /** Bytes of optimizer state this process holds on the backend (moments, and master weights it keeps). */
    long stateBytes();
}
