package dev.anvil.engine.cli;

import dev.anvil.engine.data.Tokenizer;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.sample.Sampler;
import dev.anvil.kernels.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.util.Arrays;
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
            Tokenizer tokenizer = Tokenizer.forVocabSize(model.config().vocabSize());
            int[] promptTokens = tokenizer.encode(prompt);
            int context = model.config().maxSeqLen();
            int[] tokens = new int[promptTokens.length + maxTokens + 1];
            int n = 0;
            tokens[n++] = tokenizer.endOfText(); // GPT-2 convention: a document starts after end-of-text
            System.arraycopy(promptTokens, 0, tokens, n, promptTokens.length);
            n += promptTokens.length;
            int generatedFrom = n;
            int printed = 0;
            System.out.print(prompt);
            for (int i = 0; i < maxTokens; i++) {
                int start = Math.max(0, n - context);
                int[] window = Arrays.copyOfRange(tokens, start, n);
                float[] logits = model.lastLogits(window, 1, window.length)[0];
                // A model may have more ids than its tokenizer (tiny: 512 for 257 byte ids): never sample those.
                int next = sampler.next(logits.length > tokenizer.vocabSize()
                        ? Arrays.copyOf(logits, tokenizer.vocabSize()) : logits);
                if (next == tokenizer.endOfText()) {
                    break;
                }
                tokens[n++] = next;
                // A token may hold part of a UTF-8 character: decode all generated tokens and print
                // what is new once the text no longer ends in an incomplete character.
                String text = tokenizer.decode(Arrays.copyOfRange(tokens, generatedFrom, n));
                if (!text.endsWith("\uFFFD")) {
                    System.out.print(text.substring(printed));
                    System.out.flush();
                    printed = text.length();
                }
            }
            // Whatever was held back waiting for the rest of a character is printed as decoded.
            System.out.println(tokenizer.decode(Arrays.copyOfRange(tokens, generatedFrom, n)).substring(printed));
            return 0;
        }
    }
}
