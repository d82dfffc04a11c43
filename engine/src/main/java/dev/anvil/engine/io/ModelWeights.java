package dev.anvil.engine.io;

import dev.anvil.engine.model.GptConfig;

/**
 * A model's shape and parameters.
 *
 * @param config the model's shape
 * @param params all parameters in {@link dev.anvil.engine.model.ParameterLayout} order and shapes,
 *               {@code ParameterLayout.of(config).totalSize()} of them
 */
public record ModelWeights(GptConfig config, float[] params) {
}
