package dev.anvil.engine.cli;

import dev.anvil.engine.checkpoint.Checkpointer;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.ModelWeights;
import dev.anvil.engine.model.GptModel;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.DType;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --checkpoint DIR}: a model directory (a training checkpoint or any config.json + model.safetensors), or a
 * {@code --save-dir}, which stands for its newest valid checkpoint.
 */
final class CheckpointOption {

    @Option(names = {"--checkpoint", "-c"}, paramLabel = "DIR", required = true,
            description = "A checkpoint or model directory (config.json + model.safetensors), or a train --save-dir"
                    + " (its newest valid checkpoint)")
    Path dir;

    private Path modelDir;

    /** Loads the weights into a new model of {@code dtype} (FP32 or BF16) on {@code backend}. */
    GptModel load(Backend backend, DType dtype) throws IOException {
        ModelWeights weights = HfModelFiles.load(modelDir());
        GptModel model = new GptModel(backend, weights.config(), dtype);
        model.writeParameters(weights.params());
        return model;
    }

    /** Where the weights come from: {@link #dir}, or the newest valid checkpoint in it when it is a --save-dir. */
    Path modelDir() throws IOException {
        if (modelDir == null) {
            Checkpointer saveDir = new Checkpointer(dir, 0);
            List<Path> checkpoints = saveDir.list();
            modelDir = Files.isRegularFile(dir.resolve(HfModelFiles.CONFIG_FILE)) || checkpoints.isEmpty() ? dir
                    : saveDir.latestValid(System.err::println).orElseThrow(() -> new IllegalArgumentException(
                            dir + " holds no valid checkpoint: each of " + checkpoints.size()
                                    + " is corrupt or incomplete"));
        }
        return modelDir;
    }
}
