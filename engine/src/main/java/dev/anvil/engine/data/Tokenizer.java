package dev.anvil.engine.data;

/**
 * Turns text into token ids and back.
 *
 * <p>Encoding is <em>ordinary</em>: text is never parsed for special tokens, so a literal
 * {@code "<|endoftext|>"} in a document is encoded as the characters it consists of, and only the data
 * pipeline itself places {@link #endOfText()} between documents (as llm.c's data scripts do with
 * tiktoken's {@code encode_ordinary}). Decoding renders the end-of-text id as {@code "<|endoftext|>"}.
 */
public sealed interface Tokenizer permits Gpt2Tokenizer, ByteTokenizer {

    /** GPT-2's BPE (r50k_base): vocabulary 50257, end-of-text id 50256. */
    static Tokenizer gpt2() {
        return Gpt2Tokenizer.INSTANCE;
    }

    /** UTF-8 bytes as ids 0..255 and end-of-text 256: vocabulary 257, for small models such as {@code tiny}. */
    static Tokenizer bytes() {
        return ByteTokenizer.INSTANCE;
    }

    /**
     * The tokenizer a model with this vocabulary uses: GPT-2 BPE from 50257 ids up, bytes from 257 (so the
     * {@code tiny} preset, vocabulary 512, trains on bytes).
     *
     * @throws IllegalArgumentException below 257, where not even bytes fit
     */
    static Tokenizer forVocabSize(int vocabSize) {
        if (vocabSize >= gpt2().vocabSize()) {
            return gpt2();
        }
        if (vocabSize >= bytes().vocabSize()) {
            return bytes();
        }
        throw new IllegalArgumentException("vocabulary size " + vocabSize + " is too small for any tokenizer: need "
                + bytes().vocabSize() + " for bytes or " + gpt2().vocabSize() + " for GPT-2 BPE");
    }

    /** A short name for logs: {@code gpt2} or {@code bytes}. */
    String name();

    /** Number of ids this tokenizer produces, end-of-text included. */
    int vocabSize();

    /** The id that separates documents. */
    int endOfText();

    /** Encodes text without special-token parsing (see the class comment). */
    int[] encode(String text);

    /** Decodes ids; ids this tokenizer never produces (e.g. a model's padding ids) become U+FFFD. */
    String decode(int[] tokens);
}
