package dev.anvil.engine.train;

/**
 * What one optimizer step reports: one line of {@code --metrics-out}.
 *
 * @param step        steps completed, counting from 1
 * @param loss        mean training loss of the step's batch
 * @param lr          learning rate used
 * @param gradNorm    global gradient L2 norm before clipping
 * @param tokensPerS  tokens processed per second in this step
 * @param elapsedS    seconds since training (or this resumed run) started
 * @param valLoss     validation loss when evaluated at this step, else {@code null}
 */
public record StepMetrics(int step, double loss, double lr, double gradNorm, double tokensPerS, double elapsedS,
                          Double valLoss) {
}
