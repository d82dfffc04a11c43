package dev.anvil.engine.cli;

import dev.anvil.engine.data.Tokenizer;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.sample.Sampler;
import dev.anvil.engine.sample.TextGenerator;
import dev.anvil.kernels.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.util.concurrent.Callable;

/** {@code anvil generate}: samples text from a checkpoint. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Sample text from a checkpoint.")
public final class GenerateCommand implements Callable<Integer> {

    @Mixin
    CheckpointOption checkpoint;

    @Option(names = "--prompt", defaultValue = "", description = "Text to continue (default: start of a document)")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "200", description = "Tokens to generate (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.8", description = "0 = greedy; higher = more random (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", description = "Sample among the k most likely tokens; 0 = all (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--seed", defaultValue = "1", description = "Sampling seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Mixin
    BackendOptions compute;

    @Override
    public Integer call() throws IOException {
        if (maxTokens < 0) {
            throw new IllegalArgumentException("--max-tokens must be non-negative, got " + maxTokens);
        }
        Sampler sampler = new Sampler(temperature, topK, seed);
        try (Backend backend = compute.open(); GptModel model = checkpoint.load(backend, compute.dtype())) {
            TextGenerator.generate(model, Tokenizer.forVocabSize(model.config().vocabSize()), sampler, prompt,
                    maxTokens, System.out);
            return 0;
        }
    }
}
