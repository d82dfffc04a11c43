package dev.anvil.bench.harness;

/** The parts a training step's wall time is split into, in the order a step runs them. */
public enum Phase {
    /** Making the batch (synthetic tokens here). */
    DATA,
    /** {@code GptModel.forwardTrunk}: embeddings, blocks and the final LayerNorm. */
    FORWARD,
    /**
     * {@code GptModel.lmHeadStep}: the LM head and cross-entropy, forward and backward fused (for the
     * CPU speed bar two thirds of a step's FLOPs).
     */
    LM_HEAD,
    /** {@code GptModel.backward}: the blocks and embeddings (the LM head's share ran in {@link #LM_HEAD}). */
    BACKWARD,
    /**
     * Waiting, after the backward pass, for the gradient reduction between ranks it started (the
     * all-reduce, or with ZeRO-1 the reduce-scatter); zero on one rank.
     */
    COMMUNICATION,
    /**
     * Gradient norm, clipping, the AdamW update and zeroing the gradients for the next step; with
     * ZeRO-1 also the all-gather of the updated parameters.
     */
    OPTIMIZER;

    /** The lower-case name used in JSON, CSV and tables. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
