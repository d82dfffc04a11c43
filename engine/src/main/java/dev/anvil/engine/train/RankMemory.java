package dev.anvil.engine.train;

import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.Optimizer;

import java.util.Locale;

/**
 * The memory one rank holds for training, in bytes, by what it is for; the fp32 master weights
 * count as optimizer state (as in the ZeRO paper), wherever they are kept.
 *
 * @param parameters     the weights the passes compute with
 * @param gradients      the gradient buffer
 * @param optimizerState moments, and master weights of a BF16 model
 * @param activations    what the forward pass keeps for the backward pass, and its scratch
 */
public record RankMemory(long parameters, long gradients, long optimizerState, long activations) {

    /** What {@code model} and {@code optimizer} hold now (activations once a forward pass has run). */
    public static RankMemory of(GptModel model, Optimizer optimizer) {
        GptModel.Memory m = model.memory();
        return new RankMemory(m.parameters(), m.gradients(), m.masterWeights() + optimizer.stateBytes(),
                m.activations());
    }

    /** The sum of the parts. */
    public long total() {
        return parameters + gradients + optimizerState + activations;
    }

    /** One line, e.g. {@code parameters 474.7 MiB, gradients 474.7 MiB, optimizer state 949.4 MiB, ...}. */
    public String describe() {
        return String.format(Locale.ROOT, "parameters %s, gradients %s, optimizer state %s, activations %s (total %s)",
                mib(parameters), mib(gradients), mib(optimizerState), mib(activations), mib(total()));
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%,.1f MiB", bytes / (1024.0 * 1024.0));
    }
}
