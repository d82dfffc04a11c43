package dev.anvil.engine.data;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * UTF-8 bytes as tokens 0..255 plus end-of-text 256: no training, no merges, and any text round-trips.
 * Small models ({@code tiny}, vocabulary 512) use it so they need no GPT-2-sized embedding.
 */
final class ByteTokenizer implements Tokenizer {

    static final ByteTokenizer INSTANCE = new ByteTokenizer();

    private static final int END_OF_TEXT = 256;
    private static final byte[] END_OF_TEXT_TEXT = "<|endoftext|>".getBytes(StandardCharsets.UTF_8);
    private static final byte[] REPLACEMENT = "\uFFFD".getBytes(StandardCharsets.UTF_8);

    private ByteTokenizer() {
    }

    @Override
    public String name() {
        return "bytes";
    }

    @Override
    public int vocabSize() {
        return END_OF_TEXT + 1;
    }

    @Override
    public int endOfText() {
        return END_OF_TEXT;
    }

    @Override
    public int[] encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] tokens = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            tokens[i] = bytes[i] & 0xFF;
        }
        return tokens;
    }

    @Override
    public String decode(int[] tokens) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(tokens.length);
        for (int token : tokens) {
            if (token >= 0 && token < END_OF_TEXT) {
                bytes.write(token);
            } else {
                bytes.writeBytes(token == END_OF_TEXT ? END_OF_TEXT_TEXT : REPLACEMENT);
            }
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }
}
