package dev.anvil.engine.cli;

import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.ModelWeights;
import dev.anvil.engine.model.GptModel;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.DType;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** {@code --checkpoint DIR}: a model directory (a training checkpoint or any config.json + model.safetensors). */
final class CheckpointOption {

    @Option(names = {"--checkpoint", "-c"}, paramLabel = "DIR", required = true,
            description = "A checkpoint or model directory (config.json + model.safetensors)")
    Path dir;

    /** Loads the weights into a new model of {@code dtype} (FP32 or BF16) on {@code backend}. */
    GptModel load(Backend backend, DType dtype) throws IOException {
        ModelWeights weights = HfModelFiles.load(dir);
        GptModel model = new GptModel(backend, weights.config(), dtype);
        model.writeParameters(weights.params());
        return model;
    }
}
