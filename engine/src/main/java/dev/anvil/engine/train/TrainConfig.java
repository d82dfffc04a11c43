package dev.anvil.engine.train;

import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.optim.LearningRateSchedule;

/**
 * The hyperparameters of a training run: everything that decides the losses it produces.
 *
 * @param batchSize    sequences per micro-batch, {@code B}
 * @param seqLen       tokens per sequence, {@code T}
 * @param gradAccum    micro-batches summed per optimizer step
 * @param steps        optimizer steps in the whole run
 * @param lr           peak learning rate
 * @param schedule     {@code constant} or {@code cosine}
 * @param warmupSteps  linear warmup steps
 * @param minLr        floor of the cosine decay
 * @param adamw        AdamW and clipping settings
 * @param seed         initialisation seed
 */
public record TrainConfig(int batchSize, int seqLen, int gradAccum, int steps, float lr, String schedule,
                          int warmupSteps, float minLr, AdamWConfig adamw, long seed) {

    public TrainConfig {
        requirePositive("--batch-size", batchSize);
        requirePositive("--seq-len", seqLen);
        requirePositive("--grad-accum", gradAccum);
        requirePositive("--steps", steps);
        if (!schedule.equals("constant") && !schedule.equals("cosine")) {
            throw new IllegalArgumentException("--lr-schedule must be constant or cosine, got '" + schedule + "'");
        }
        learningRates(lr, schedule, warmupSteps, minLr, steps);
    }

    private static void requirePositive(String option, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(option + " must be positive, got " + value);
        }
    }

    private static LearningRateSchedule learningRates(float lr, String schedule, int warmup, float minLr, int steps) {
        return schedule.equals("cosine") ? new LearningRateSchedule.WarmupCosine(lr, minLr, warmup, steps)
                : new LearningRateSchedule.Constant(lr, warmup);
    }

    /** The learning-rate schedule these settings describe. */
    public LearningRateSchedule learningRates() {
        return learningRates(lr, schedule, warmupSteps, minLr, steps);
    }

    /** Tokens per optimizer step on one rank. */
    public long tokensPerStep() {
        return (long) batchSize * seqLen * gradAccum;
    }
}
