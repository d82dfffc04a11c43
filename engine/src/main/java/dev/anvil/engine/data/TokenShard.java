package dev.anvil.engine.data;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A memory-mapped token shard in llm.c's format: a header of {@value #HEADER_INTS} little-endian int32
 * ({@code [0]} = {@value #MAGIC}, {@code [1]} = {@value #VERSION}, {@code [2]} = token count), then the tokens
 * as little-endian uint16.
 *
 * <p>Tokens stay in the file: nothing is copied onto the heap. The mapping belongs to an automatic arena,
 * so it is released when the shard becomes unreachable and callers have nothing to close.
 */
public final class TokenShard {

    /** {@code header[0]} of every shard. */
    public static final int MAGIC = 20240520;
    /** {@code header[1]}: the only version llm.c writes for uint16 tokens. */
    public static final int VERSION = 1;
    /** Header length in int32. */
    public static final int HEADER_INTS = 256;
    /** Header length in bytes. */
    public static final int HEADER_BYTES = HEADER_INTS * Integer.BYTES;
    /** Largest token a shard can hold (uint16). */
    public static final int MAX_TOKEN = 0xFFFF;

    static final ValueLayout.OfInt HEADER_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfChar TOKEN = ValueLayout.JAVA_CHAR_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final MemorySegment tokens;
    private final long size;

    private TokenShard(Path path, MemorySegment tokens) {
        this.path = path;
        this.tokens = tokens;
        this.size = tokens.byteSize() / Character.BYTES;
    }

    /**
     * Maps and validates a shard.
     *
     * @throws NoSuchFileException if {@code path} does not exist
     * @throws IOException         naming the file and the problem if the header is corrupt or the file is
     *                             truncated or has trailing bytes
     */
    public static TokenShard open(Path path) throws IOException {
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(path.toString(), null, "no such token shard");
        }
        try (channel) {
            long fileSize = channel.size();
            if (fileSize < HEADER_BYTES) {
                throw corrupt(path, "file is " + fileSize + " bytes, shorter than the " + HEADER_BYTES
                        + "-byte header: not an llm.c token shard, or truncated");
            }
            MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, Arena.ofAuto());
            int magic = file.get(HEADER_INT, 0);
            if (magic != MAGIC) {
                throw corrupt(path, "bad magic " + magic + " (expected " + MAGIC + "): not an llm.c token shard");
            }
            int version = file.get(HEADER_INT, 4);
            if (version != VERSION) {
                throw corrupt(path, "unsupported version " + version + " (expected " + VERSION
                        + ", uint16 tokens)");
            }
            int count = file.get(HEADER_INT, 8);
            if (count < 0) {
                throw corrupt(path, "negative token count " + count + " in the header");
            }
            long expected = HEADER_BYTES + 2L * count;
            if (fileSize < expected) {
                throw corrupt(path, "header says " + count + " tokens (" + expected + " bytes) but the file has only "
                        + fileSize + " bytes: truncated; re-create it");
            }
            if (fileSize > expected) {
                throw corrupt(path, "file has " + fileSize + " bytes but the header's " + count + " tokens need "
                        + expected + ": trailing data or a corrupt token count");
            }
            return new TokenShard(path, file.asSlice(HEADER_BYTES).asReadOnly());
        }
    }

    private static IOException corrupt(Path path, String what) {
        return new IOException(path + ": " + what);
    }

    /** The shard's file. */
    public Path path() {
        return path;
    }

    /** Number of tokens. */
    public long size() {
        return size;
    }

    /** The token at {@code index}, {@code 0 <= index < size()}. */
    public int get(long index) {
        return tokens.get(TOKEN, index * Character.BYTES);
    }

    /** The tokens as a read-only segment of little-endian uint16. */
    public MemorySegment tokens() {
        return tokens;
    }

    @Override
    public String toString() {
        return path + " (" + size + " tokens)";
    }
}
