package dev.anvil.engine.data;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Deterministic synthetic documents: mixed-script words, numbers, punctuation and odd spacing. */
final class GeneratedText {

    private static final String[] WORDS = {"the", "parliament", "data", "token", "Anvil", "llm", "shard",
        "über", "naïve", "café", "Ζεύς", "日本", "🚀", "isn't", "we'll", "42", "3.14", "1,000", "(note)", "—", "\"quoted\"",
        "e-mail", "<|endoftext|>", "x", "Straße", "ÆØÅ", "a", "of", "and", "model"};
    private static final String[] SEPARATORS = {" ", " ", " ", " ", "  ", ", ", ". ", "\t", " - "};

    private GeneratedText() {
    }

    /** Documents of at least {@code totalChars} characters in all; multi-line unless {@code singleLine}. */
    static List<String> documents(long seed, int totalChars, boolean singleLine) {
        Random random = new Random(seed);
        List<String> documents = new ArrayList<>();
        int chars = 0;
        while (chars < totalChars) {
            StringBuilder doc = new StringBuilder();
            int lines = singleLine ? 1 : 1 + random.nextInt(6);
            for (int l = 0; l < lines; l++) {
                if (l > 0) {
                    doc.append('\n');
                }
                if (random.nextInt(8) == 0) {
                    doc.append(random.nextBoolean() ? "  " : "\t");
                }
                int words = 1 + random.nextInt(random.nextInt(10) == 0 ? 400 : 30);
                for (int w = 0; w < words; w++) {
                    if (w > 0) {
                        doc.append(SEPARATORS[random.nextInt(SEPARATORS.length)]);
                    }
                    doc.append(WORDS[random.nextInt(WORDS.length)]);
                }
                if (random.nextInt(10) == 0) {
                    doc.append(' ');
                }
            }
            documents.add(doc.toString());
            chars += doc.length();
        }
        return documents;
    }

    /** The documents as a file's text: separated by a blank line, or one per line. */
    static String join(List<String> documents, boolean singleLine) {
        return String.join(singleLine ? "\n" : "\n\n", documents) + "\n";
    }

    /** What the pipeline must produce: each document preceded by end-of-text. */
    static int[] expectedTokens(List<String> documents, Tokenizer tokenizer) {
        int[][] encoded = documents.parallelStream().map(tokenizer::encode).toArray(int[][]::new);
        int total = 0;
        for (int[] tokens : encoded) {
            total += tokens.length + 1;
        }
        int[] all = new int[total];
        int at = 0;
        for (int[] tokens : encoded) {
            all[at++] = tokenizer.endOfText();
            System.arraycopy(tokens, 0, all, at, tokens.length);
            at += tokens.length;
        }
        return all;
    }
}
