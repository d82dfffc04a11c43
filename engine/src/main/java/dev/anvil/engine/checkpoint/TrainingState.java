package dev.anvil.engine.checkpoint;

/**
 * Where a run stood when a checkpoint was taken: with the model and optimizer state, enough to
 * continue bit for bit.
 *
 * @param step          optimizer steps completed
 * @param nextMicroStep the data position: index of the next micro-batch to read (the data order is
 *                      a function of this index alone)
 * @param gradAccum     micro-batches per step when it was taken
 * @param worldSize     data-parallel ranks when it was taken
 * @param seed          the run's seed; training draws no random numbers after initialisation (no
 *                      dropout, a fixed data order), so seed and step are its whole RNG state
 */
public record TrainingState(int step, long nextMicroStep, int gradAccum, int worldSize, long seed) {
}
