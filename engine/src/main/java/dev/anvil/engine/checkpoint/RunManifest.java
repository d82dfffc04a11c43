package dev.anvil.engine.checkpoint;

import java.util.List;
import java.util.Map;

/**
 * What produced a checkpoint, for reproducibility: the full configuration, the command line, the
 * SHA-256 of every data shard, and the code and runtime versions.
 */
public record RunManifest(Map<String, Object> config, List<String> commandLine, Map<String, String> dataSha256,
                          String codeVersion, String javaVersion, String backend, String createdAt) {
}
