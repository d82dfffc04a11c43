package dev.anvil.engine.data;

import java.io.File;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * A token stream for training: one or more parts (memory-mapped shards, or tokens held in memory) read as
 * a single logical sequence, without copying. Thread-safe for reading.
 */
public final class TokenSource {

    private final String description;
    private final List<Path> files;
    private final MemorySegment[] parts;
    /** {@code starts[i]} is the global index of part {@code i}'s first token; {@code starts[n]} is the size. */
    private final long[] starts;

    private TokenSource(String description, List<Path> files, List<MemorySegment> parts) {
        this.description = description;
        this.files = List.copyOf(files);
        this.parts = parts.toArray(MemorySegment[]::new);
        this.starts = new long[this.parts.length + 1];
        for (int i = 0; i < this.parts.length; i++) {
            starts[i + 1] = starts[i] + this.parts[i].byteSize() / Character.BYTES;
        }
    }

    /**
     * Resolves a {@code --data} argument:
     * <ul>
     *   <li>a text file ({@code .txt}, {@code .gz}, {@code .txt.gz}): tokenized now into memory, documents
     *       separated by blank lines ({@link DocumentSplit#PARAGRAPHS}); meant for modest files, as the tokens
     *       (2 bytes each) stay on the heap, at most about a billion; prepare bigger corpora into shards;</li>
     *   <li>a directory: every {@code *.bin} shard in it, in name order;</li>
     *   <li>a glob in the file name, e.g. {@code data/train_*.bin}: the matching shards in name order;</li>
     *   <li>any other file: a single shard.</li>
     * </ul>
     *
     * @param tokenizer used only for text files
     * @throws IOException naming the path if nothing is found there or a shard is invalid
     */
    public static TokenSource resolve(String spec, Tokenizer tokenizer) throws IOException {
        if (isGlob(spec)) {
            // Split at the last separator by hand: on some file systems '*' is not a legal path character.
            int slash = Math.max(spec.lastIndexOf('/'), spec.lastIndexOf(File.separatorChar));
            String dir = slash < 0 ? "." : slash == 0 ? "/" : spec.substring(0, slash);
            if (isGlob(dir)) {
                throw new IllegalArgumentException(spec + ": wildcards are supported in the file name only");
            }
            return shards(spec, Path.of(dir), "glob:" + spec.substring(slash + 1), "files matching the glob");
        }
        Path file = Path.of(spec);
        if (Files.isDirectory(file)) {
            return shards(spec, file, "glob:*.bin", "*.bin in the directory");
        }
        if (!Files.exists(file)) {
            throw new NoSuchFileException(spec, null, "no such file or directory (expected a shard, a directory "
                    + "of shards, a glob like data/train_*.bin, or a .txt/.gz text file)");
        }
        String lower = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (lower.endsWith(".txt") || lower.endsWith(".gz")) {
            return ofText(file, tokenizer);
        }
        return ofShards(spec, List.of(TokenShard.open(file)));
    }

    private static boolean isGlob(String spec) {
        return spec.chars().anyMatch(c -> c == '*' || c == '?' || c == '[' || c == '{');
    }

    private static TokenSource shards(String spec, Path dir, String glob, String lookedFor) throws IOException {
        PathMatcher matcher = dir.getFileSystem().getPathMatcher(glob);
        List<Path> matches = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path entry : entries) {
                if (Files.isRegularFile(entry) && matcher.matches(entry.getFileName())) {
                    matches.add(entry);
                }
            }
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(spec, null, "directory " + dir + " does not exist");
        }
        if (matches.isEmpty()) {
            throw new NoSuchFileException(spec, null, "no token shards found (looked for " + lookedFor + ")");
        }
        matches.sort(null);
        List<TokenShard> shards = new ArrayList<>();
        for (Path match : matches) {
            shards.add(TokenShard.open(match));
        }
        return ofShards(spec, shards);
    }

    /** The shards, in the given order, as one sequence; {@code name} describes them in logs. */
    public static TokenSource ofShards(String name, List<TokenShard> shards) {
        return new TokenSource(name + " (" + shards.size() + (shards.size() == 1 ? " shard)" : " shards)"),
                shards.stream().map(TokenShard::path).toList(), shards.stream().map(TokenShard::tokens).toList());
    }

    /** Tokenizes a text file ({@code .gz} compressed if so named) into memory; see {@link #resolve}. */
    public static TokenSource ofText(Path file, Tokenizer tokenizer) throws IOException {
        TokenBuffer buffer = new TokenBuffer();
        new TokenStreamer(tokenizer, DocumentSplit.PARAGRAPHS, 1 << 20, Runtime.getRuntime().availableProcessors())
                .run(List.of(file), buffer, (bytes, tokens) -> { });
        return new TokenSource(file + " (text, " + tokenizer.name() + " tokens)", List.of(file),
                List.of(buffer.segment()));
    }

    /** Tokens held in memory; each must fit in uint16. */
    public static TokenSource ofTokens(String name, int[] tokens) {
        TokenBuffer buffer = new TokenBuffer();
        buffer.accept(tokens);
        return new TokenSource(name, List.of(), List.of(buffer.segment()));
    }

    /** Tokens already laid out as little-endian uint16. */
    static TokenSource ofSegment(String name, MemorySegment tokens) {
        return new TokenSource(name, List.of(), List.of(tokens));
    }

    /** Number of tokens. */
    public long size() {
        return starts[parts.length];
    }

    /** The token at global index {@code index}. */
    public int get(long index) {
        int part = partOf(index);
        return parts[part].get(TokenShard.TOKEN, (index - starts[part]) * Character.BYTES);
    }

    /** Copies {@code length} tokens starting at global index {@code start} into {@code dst[offset..]}. */
    public void read(long start, int[] dst, int offset, int length) {
        if (start < 0 || length < 0 || start + length > size()) {
            throw new IndexOutOfBoundsException("tokens [" + start + ", " + (start + length) + ") outside [0, "
                    + size() + ")");
        }
        int part = length == 0 ? 0 : partOf(start);
        long index = start;
        for (int i = 0; i < length; i++, index++) {
            while (index >= starts[part + 1]) {
                part++;
            }
            dst[offset + i] = parts[part].get(TokenShard.TOKEN, (index - starts[part]) * Character.BYTES);
        }
    }

    private int partOf(long index) {
        if (index < 0 || index >= size()) {
            throw new IndexOutOfBoundsException("token " + index + " outside [0, " + size() + ")");
        }
        int found = Arrays.binarySearch(starts, index);
        // An exact hit may be the start of an empty part; the token lives in the last part starting there.
        if (found >= 0) {
            while (starts[found + 1] == index) {
                found++;
            }
            return found;
        }
        return -found - 2;
    }

    /** The shard or text files behind this source, in order (empty for tokens given in memory). */
    public List<Path> files() {
        return files;
    }

    @Override
    public String toString() {
        return description + ", " + size() + " tokens";
    }
}
