package dev.anvil.engine.sample;

import dev.anvil.engine.data.Tokenizer;
import dev.anvil.engine.model.GptModel;

import java.io.PrintStream;
import java.util.Arrays;

/** Continues a prompt with a model, token by token, printing the text as it is decoded. */
public final class TextGenerator {

    private TextGenerator() {
    }

    /**
     * Prints {@code prompt}, then up to {@code maxTokens} sampled tokens (fewer when the model ends the document),
     * then a newline.
     *
     * @param model any model; its context slides over the text once the text is longer
     * @param tokenizer the model's tokenizer
     */
    public static void generate(GptModel model, Tokenizer tokenizer, Sampler sampler, String prompt, int maxTokens,
                                PrintStream out) {
        int[] promptTokens = tokenizer.encode(prompt);
        int context = model.config().maxSeqLen();
        int[] tokens = new int[promptTokens.length + maxTokens + 1];
        int n = 0;
        tokens[n++] = tokenizer.endOfText(); // GPT-2 convention: a document starts after end-of-text
        System.arraycopy(promptTokens, 0, tokens, n, promptTokens.length);
        n += promptTokens.length;
        int generatedFrom = n;
        int printed = 0;
        out.print(prompt);
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
                out.print(text.substring(printed));
                out.flush();
                printed = text.length();
            }
        }
        // Whatever was held back waiting for the rest of a character is printed as decoded.
        out.println(tokenizer.decode(Arrays.copyOfRange(tokens, generatedFrom, n)).substring(printed));
    }
}
