package dev.anvil.engine.parallel;

import dev.anvil.engine.model.GptModel;

/**
 * Reduces gradients across data-parallel ranks while the backward pass runs: told of each finished
 * region of the gradient buffer ({@link GptModel.GradientListener}), it starts communicating at
 * once; {@link #finish} waits for the rest. {@link GradientSync} all-reduces, so every rank gets
 * every mean gradient; {@link dev.anvil.engine.zero.ShardedGradientSync} reduce-scatters, so each
 * rank gets the mean of the shard its optimizer updates.
 */
public interface GradientReduction extends GptModel.GradientListener {

    /** Waits for every region of this backward pass; afterwards the reduced gradients are in place. */
    void finish();

    /**
     * Checks that region {@code [offset, offset + length)} adjoins the finished suffix starting at
     * {@code readyStart}, as {@link GptModel.GradientListener} promises.
     */
    static void requireAdjoining(long offset, long length, long readyStart) {
        if (offset + length != readyStart) {
            throw new IllegalStateException("gradient regions must arrive from the end of the buffer to its start: got ["
                    + offset + ", " + (offset + length) + ") after " + readyStart);
        }
    }
}
