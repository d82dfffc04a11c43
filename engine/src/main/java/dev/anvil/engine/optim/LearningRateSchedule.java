package dev.anvil.engine.optim;

/**
 * The learning rate at each step (0-based): linear warmup over {@code warmupSteps} steps, then
 * either constant or a cosine decay that reaches {@code minLr} at the last step, as in llm.c and
 * nanoGPT.
 */
public sealed interface LearningRateSchedule {

    /** Learning rate for 0-based step {@code step}. */
    float at(int step);

    /** Linear warmup to {@code lr}, then constant. */
    record Constant(float lr, int warmupSteps) implements LearningRateSchedule {
        public Constant {
            requireValid(lr, warmupSteps);
        }

        @Override
        public float at(int step) {
            return step < warmupSteps ? warmup(lr, step, warmupSteps) : lr;
        }
    }

    /** Linear warmup to {@code maxLr}, then cosine decay to {@code minLr} at step {@code totalSteps - 1}. */
    record WarmupCosine(float maxLr, float minLr, int warmupSteps, int totalSteps) implements LearningRateSchedule {
        public WarmupCosine {
            requireValid(maxLr, warmupSteps);
            if (!(minLr >= 0 && minLr <= maxLr)) {
                throw new IllegalArgumentException("min learning rate must lie in [0, " + maxLr + "], got " + minLr);
            }
            if (totalSteps <= 0) {
                throw new IllegalArgumentException("total steps must be positive, got " + totalSteps);
            }
        }

        @Override
        public float at(int step) {
            if (step < warmupSteps) {
                return warmup(maxLr, step, warmupSteps);
            }
            int decaySteps = totalSteps - 1 - warmupSteps;
            if (decaySteps <= 0) {
                return maxLr;
            }
            double ratio = Math.min(1.0, (double) (step - warmupSteps) / decaySteps);
            double coeff = 0.5 * (1.0 + Math.cos(Math.PI * ratio));
            return (float) (minLr + coeff * (maxLr - minLr));
        }
    }

    private static float warmup(float lr, int step, int warmupSteps) {
        return lr * (step + 1) / warmupSteps;
    }

    private static void requireValid(float lr, int warmupSteps) {
        if (!(lr > 0) || Float.isInfinite(lr)) {
            throw new IllegalArgumentException("learning rate must be positive and finite, got " + lr);
        }
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmup steps must be non-negative, got " + warmupSteps);
        }
    }
}
