package dev.anvil.engine.model;

/**
 * Which activations a training forward pass keeps for the backward pass, and which the backward
 * pass recomputes from each block's input instead ({@code --recompute}). Recomputed values are
 * bit for bit the ones the forward pass computed: the same ops on the same inputs.
 */
public enum Recompute {
    /** Keep every activation the backward pass reads: 16 of {@code B·T·C} values per block. */
    NONE,
    /**
     * Recompute the attention half of each block (LayerNorm 1, the QKV projection, attention) before
     * its backward pass: 11 per block kept, one extra QKV GEMM and attention forward per block.
     */
    ATTENTION,
    /**
     * Keep only each block's input (the residual stream) and recompute the whole block before its
     * backward pass: 1 per block kept, about a third more compute.
     */
    BLOCK
}
