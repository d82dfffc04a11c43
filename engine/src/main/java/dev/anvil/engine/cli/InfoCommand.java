package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.anvil.engine.checkpoint.Checkpointer;
import dev.anvil.engine.data.TokenShard;
import dev.anvil.engine.io.HfConfig;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.model.GptConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code anvil info}: describes a checkpoint, a model directory or a token shard, as JSON. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Describe a checkpoint, a model directory, a checkpoint directory (--save-dir) or a token shard, as JSON.")
public final class InfoCommand implements Callable<Integer> {

    @Parameters(paramLabel = "PATH", description = "A checkpoint or model directory, a --save-dir, or a .bin shard")
    Path path;

    @Override
    public Integer call() throws IOException {
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("path", path.toString());
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString());
        }
        if (Files.isRegularFile(path)) {
            TokenShard shard = TokenShard.open(path);
            info.put("kind", "token shard");
            info.put("tokens", shard.size());
            info.put("bytes", Files.size(path));
        } else if (Files.isRegularFile(path.resolve(HfModelFiles.CONFIG_FILE))) {
            GptConfig config = HfConfig.read(path.resolve(HfModelFiles.CONFIG_FILE));
            info.put("kind", Files.exists(path.resolve("state.json")) ? "training checkpoint" : "model");
            info.put("config", config);
            info.put("parameters", config.parameterCount());
            if (Files.exists(path.resolve("state.json"))) {
                info.put("state", Checkpointer.readState(path));
            }
        } else {
            var checkpoints = new Checkpointer(path, 0).list();
            if (checkpoints.isEmpty()) {
                throw new IllegalArgumentException(path + " is neither a model directory (no config.json), a token shard, "
                        + "nor a --save-dir holding checkpoints");
            }
            info.put("kind", "checkpoint directory");
            info.put("checkpoints", checkpoints.stream().map(p -> p.getFileName().toString()).toList());
        }
        System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(info));
        return 0;
    }
}
