package dev.anvil.engine.data;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Tokenizes text files into llm.c token shards, the work behind {@code anvil prepare}.
 *
 * <p>Inputs are UTF-8 text, gzip-compressed when named {@code .gz}, read in order and streamed: memory use
 * depends on {@link Options#pieceChars()} and the thread count, never on the input size. Each document
 * ({@link DocumentSplit}) is preceded by the end-of-text token, as in llm.c's fineweb preparation, so the
 * token stream starts with one. The first part of the stream goes to validation shards
 * {@code val_NNNNNN.bin}, the rest to {@code train_NNNNNN.bin} (with a prefix: {@code <prefix>_val_NNNNNN.bin},
 * as llm.c's {@code fineweb_val_000000.bin}), each shard at most {@link Options#shardSize()} tokens.
 */
public final class Prepare {

    private Prepare() {
    }

    /** How much of the token stream, taken from its start, goes to validation. */
    public sealed interface ValSplit {

        /** Exactly the first {@code tokens} tokens (fewer if the input is shorter). */
        record FirstTokens(long tokens) implements ValSplit {
            public FirstTokens {
                if (tokens < 0) {
                    throw new IllegalArgumentException("validation tokens must be >= 0, got " + tokens);
                }
            }
        }

        /**
         * The first {@code fraction} of all tokens, rounded. The total is known only at the end, so the stream
         * is written to shards first and then relabelled; only the shard holding the boundary is copied.
         */
        record Fraction(double fraction) implements ValSplit {
            public Fraction {
                if (!(fraction >= 0 && fraction < 1)) {
                    throw new IllegalArgumentException("validation fraction must be in [0, 1), got " + fraction);
                }
            }
        }
    }

    /**
     * Settings for {@link #run}.
     *
     * @param outputDir  where shards are written (created if missing)
     * @param prefix     shard name prefix
     * @param shardSize  most tokens per shard
     * @param val        the validation split
     * @param documents  how text is cut into documents
     * @param tokenizer  the tokenizer
     * @param threads    tokenizing threads
     * @param pieceChars characters of text per unit of work; bounds memory together with {@code threads}
     * @param progress   whether to show a progress bar on standard error
     */
    public record Options(Path outputDir, String prefix, int shardSize, ValSplit val, DocumentSplit documents,
                          Tokenizer tokenizer, int threads, int pieceChars, boolean progress) {

        public Options {
            Objects.requireNonNull(outputDir, "outputDir");
            Objects.requireNonNull(val, "val");
            Objects.requireNonNull(documents, "documents");
            Objects.requireNonNull(tokenizer, "tokenizer");
            if (prefix == null || prefix.contains("/") || prefix.contains("\\")) {
                throw new IllegalArgumentException("prefix must be a file name part (or empty), got '" + prefix + "'");
            }
            if (shardSize < 1) {
                throw new IllegalArgumentException("shardSize must be positive, got " + shardSize);
            }
            if (threads < 1) {
                throw new IllegalArgumentException("threads must be positive, got " + threads);
            }
            if (pieceChars < DocumentReader.MIN_CHARS) {
                throw new IllegalArgumentException("pieceChars must be at least " + DocumentReader.MIN_CHARS
                        + ", got " + pieceChars);
            }
        }

        /**
         * No prefix ({@code train_000000.bin}), 100M-token shards (as llm.c's fineweb), 5% validation, paragraph
         * documents, GPT-2 BPE, one thread per processor, 1M-character pieces, a progress bar.
         */
        public static Options defaults(Path outputDir) {
            return new Options(outputDir, "", 100_000_000, new ValSplit.Fraction(0.05), DocumentSplit.PARAGRAPHS,
                    Tokenizer.gpt2(), Runtime.getRuntime().availableProcessors(), 1 << 20, true);
        }

        /** The name of shard {@code index} of {@code split} ("train", "val"): {@code [<prefix>_]<split>_NNNNNN.bin}. */
        String shardName(String split, int index) {
            return String.format(Locale.ROOT, "%s%s_%06d.bin", stem(), split, index);
        }

        /** A glob matching every shard these options would write. */
        String shardGlob() {
            return stem() + "{train,val,unsplit}_*.bin";
        }

        private String stem() {
            return prefix.isEmpty() ? "" : prefix + "_";
        }

        /** These options with another {@code prefix}. */
        public Options withPrefix(String prefix) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }

        /** These options with another {@code shardSize}. */
        public Options withShardSize(int shardSize) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }

        /** These options with another {@code val}. */
        public Options withVal(ValSplit val) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }

        /** These options with another {@code documents}. */
        public Options withDocuments(DocumentSplit documents) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }

        /** These options with another {@code tokenizer}. */
        public Options withTokenizer(Tokenizer tokenizer) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }

        /** These options with another {@code threads}. */
        public Options withThreads(int threads) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }

        /** These options with another {@code pieceChars}. */
        public Options withPieceChars(int pieceChars) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }

        /** These options with another {@code progress}. */
        public Options withProgress(boolean progress) {
            return new Options(outputDir, prefix, shardSize, val, documents, tokenizer, threads, pieceChars, progress);
        }
    }

    /** What {@link #run} wrote. */
    public record Summary(long documents, long valTokens, long trainTokens, List<Path> valFiles,
                          List<Path> trainFiles) {

        public Summary {
            valFiles = List.copyOf(valFiles);
            trainFiles = List.copyOf(trainFiles);
        }
    }

    /**
     * Tokenizes {@code inputs}, in order, into validation and training shards.
     *
     * @throws IOException if an input cannot be read, the output directory already holds shards with this
     *                     prefix, or no training tokens would remain
     */
    public static Summary run(List<Path> inputs, Options options) throws IOException {
        if (inputs.isEmpty()) {
            throw new IllegalArgumentException("no input files given");
        }
        long totalBytes = 0;
        for (Path input : inputs) {
            if (!Files.isRegularFile(input)) {
                throw new IOException(input + ": no such text file");
            }
            totalBytes += Files.size(input);
        }
        Files.createDirectories(options.outputDir());
        refuseExistingShards(options);

        ConsoleProgress bar = options.progress() ? ConsoleProgress.onStandardError(totalBytes) : null;
        long[] done = {0, 0};
        TokenStreamer.Progress progress = (bytes, tokens) -> {
            done[0] = bytes;
            done[1] = tokens;
            if (bar != null) {
                bar.update(bytes, tokens);
            }
        };
        TokenStreamer streamer = new TokenStreamer(options.tokenizer(), options.documents(), options.pieceChars(),
                options.threads());
        Summary summary;
        switch (options.val()) {
            case ValSplit.FirstTokens(long valTokens) -> {
                ShardSequence val = new ShardSequence(options, "val");
                ShardSequence train = new ShardSequence(options, "train");
                try (val; train) {
                    long documents = streamer.run(inputs, tokens -> {
                        int toVal = (int) Math.max(0, Math.min(tokens.length, valTokens - val.count()));
                        val.write(tokens, 0, toVal);
                        train.write(tokens, toVal, tokens.length - toVal);
                    }, progress);
                    summary = new Summary(documents, val.count(), train.count(), val.finish(), train.finish());
                }
            }
            case ValSplit.Fraction(double fraction) -> {
                ShardSequence all = new ShardSequence(options, "unsplit");
                long documents;
                try (all) {
                    documents = streamer.run(inputs, tokens -> all.write(tokens, 0, tokens.length), progress);
                    all.finish();
                }
                summary = relabel(options, documents, all, Math.round(fraction * all.count()));
            }
        }
        if (bar != null) {
            bar.finish(done[0], done[1]);
        }
        if (summary.trainTokens() == 0) {
            throw new IOException("no training tokens: all " + summary.valTokens() + " tokens went to validation "
                    + summary.valFiles() + "; give more text or a smaller validation split");
        }
        return summary;
    }

    private static void refuseExistingShards(Options options) throws IOException {
        String glob = "glob:" + options.shardGlob();
        var matcher = options.outputDir().getFileSystem().getPathMatcher(glob);
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(options.outputDir())) {
            for (Path entry : entries) {
                if (matcher.matches(entry.getFileName())) {
                    throw new IOException(options.outputDir() + " already holds shards named like "
                            + entry.getFileName() + "; remove them or choose another --prefix");
                }
            }
        }
    }

    /** Renames the unsplit shards into val and train ones, splitting the shard that straddles {@code valTokens}. */
    private static Summary relabel(Options options, long documents, ShardSequence all, long valTokens)
            throws IOException {
        ShardSequence val = new ShardSequence(options, "val");
        ShardSequence train = new ShardSequence(options, "train");
        try (val; train) {
            long start = 0;
            int[] chunk = new int[1 << 16];
            for (Path part : all.files()) {
                long size = (Files.size(part) - TokenShard.HEADER_BYTES) / Character.BYTES;
                if (start + size <= valTokens) {
                    val.adopt(part, size);
                } else if (start >= valTokens) {
                    train.adopt(part, size);
                } else {
                    TokenShard shard = TokenShard.open(part);
                    for (long i = 0; i < size; ) {
                        // Copy in chunks, each ending at the boundary or the shard's end, to bound memory.
                        long end = Math.min(size, start + i < valTokens ? valTokens - start : size);
                        int n = (int) Math.min(chunk.length, end - i);
                        for (int j = 0; j < n; j++) {
                            chunk[j] = shard.get(i + j);
                        }
                        (start + i < valTokens ? val : train).write(chunk, 0, n);
                        i += n;
                    }
                    val.cut();
                    train.cut();
                    Files.delete(part);
                }
                start += size;
            }
            return new Summary(documents, val.count(), train.count(), val.finish(), train.finish());
        }
    }

    /** Writes a split's tokens into consecutive shards {@code <prefix>_<split>_NNNNNN.bin} of at most shardSize. */
    private static final class ShardSequence implements AutoCloseable {

        private final Options options;
        private final String split;
        private final List<Path> files = new ArrayList<>();
        private ShardWriter current;
        private long count;

        ShardSequence(Options options, String split) {
            this.options = options;
            this.split = split;
        }

        long count() {
            return count;
        }

        List<Path> files() {
            return files;
        }

        void write(int[] tokens, int offset, int length) throws IOException {
            while (length > 0) {
                if (current == null) {
                    current = ShardWriter.create(nextName());
                }
                int n = (int) Math.min(length, options.shardSize() - current.count());
                current.write(tokens, offset, n);
                offset += n;
                length -= n;
                count += n;
                if (current.count() == options.shardSize()) {
                    cut();
                }
            }
        }

        /** Ends the current shard, if any, so the next token starts a new one. */
        void cut() throws IOException {
            if (current != null) {
                files.add(current.commit());
                current = null;
            }
        }

        /** Takes over a finished shard of {@code size} tokens as this split's next one. */
        void adopt(Path shard, long size) throws IOException {
            cut();
            Path target = nextName();
            Files.move(shard, target, StandardCopyOption.ATOMIC_MOVE);
            files.add(target);
            count += size;
        }

        private Path nextName() {
            return options.outputDir().resolve(options.shardName(split, files.size()));
        }

        /** Commits the last shard and returns all of them. */
        List<Path> finish() throws IOException {
            cut();
            return List.copyOf(files);
        }

        @Override
        public void close() throws IOException {
            if (current != null) {
                current.close();
            }
        }
    }
}
