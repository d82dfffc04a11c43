package dev.anvil.engine.train;

/**
 * Where a trainer's tokens come from: fills one micro-batch's inputs and targets for a micro-step
 * index. A pure function of the index, so a resumed run reads exactly what the interrupted one
 * would have.
 */
@FunctionalInterface
public interface Batches {

    /** Fills {@code inputs} and {@code targets} ({@code B·T} each) for micro-step {@code microStep}. */
    void fill(long microStep, int[] inputs, int[] targets);
}
