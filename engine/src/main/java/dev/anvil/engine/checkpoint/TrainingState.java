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
 * @param batchSize     sequences per micro-batch and rank; 0 in checkpoints that predate it
 * @param seqLen        tokens per sequence; 0 in checkpoints that predate it
 */
public record TrainingState(int step, long nextMicroStep, int gradAccum, int worldSize, long seed, int batchSize,
                            int seqLen) {

    /**
     * Tokens per optimizer step over all ranks, which fixes where in the data each step reads (see
     * {@link dev.anvil.engine.data.DataLoader}); 0 if the checkpoint predates the batch shape.
     */
    public long globalTokensPerStep() {
        return (long) gradAccum * worldSize * batchSize * seqLen;
    }
}
