package dev.anvil.engine.data;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes one {@link TokenShard} streaming: tokens go to a temporary file next to the target behind a
 * placeholder header; {@link #commit()} writes the real header, syncs the file to disk and renames it into
 * place, so readers never see a half-written shard.
 *
 * <p>Use in try-with-resources and call {@code commit()} last: closing an uncommitted writer deletes the
 * temporary file, so a failure part-way leaves nothing behind.
 */
public final class ShardWriter implements AutoCloseable {

    private final Path target;
    private final Path temp;
    private final FileChannel channel;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    private long count;
    private boolean done;

    private ShardWriter(Path target, Path temp, FileChannel channel) {
        this.target = target;
        this.temp = temp;
        this.channel = channel;
    }

    /** Starts a shard that {@link #commit()} will place at {@code target}, replacing any file there. */
    public static ShardWriter create(Path target) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        // Not Files.createTempFile: its owner-only permissions would carry over to the shard through the rename.
        Path temp = dir.resolve("." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
        FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        ShardWriter writer = new ShardWriter(target, temp, channel);
        writer.buffer.put(new byte[TokenShard.HEADER_BYTES]);
        return writer;
    }

    /** Number of tokens written so far. */
    public long count() {
        return count;
    }

    /**
     * Appends one token.
     *
     * @throws IllegalArgumentException if the token is outside 0..65535 or the shard would exceed the format's
     *                                  int32 token count
     */
    public void write(int token) throws IOException {
        if (done) {
            throw new IllegalStateException(target + ": shard already committed or closed");
        }
        if (token < 0 || token > TokenShard.MAX_TOKEN) {
            throw new IllegalArgumentException(target + ": token " + token + " (token #" + count
                    + ") does not fit in uint16; llm.c shards hold ids 0.." + TokenShard.MAX_TOKEN);
        }
        if (count == Integer.MAX_VALUE) {
            throw new IllegalArgumentException(target + ": a shard holds at most " + Integer.MAX_VALUE
                    + " tokens; use smaller shards");
        }
        if (!buffer.hasRemaining()) {
            flush();
        }
        buffer.putChar((char) token);
        count++;
    }

    /** Appends {@code length} tokens from {@code tokens[offset..]}; see {@link #write(int)}. */
    public void write(int[] tokens, int offset, int length) throws IOException {
        for (int i = offset; i < offset + length; i++) {
            write(tokens[i]);
        }
    }

    /** Writes the header, syncs the file and atomically moves it to its target; returns the target. */
    public Path commit() throws IOException {
        if (done) {
            throw new IllegalStateException(target + ": shard already committed or closed");
        }
        flush();
        ByteBuffer header = ByteBuffer.allocate(TokenShard.HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(TokenShard.MAGIC).putInt(TokenShard.VERSION).putInt((int) count).position(0);
        while (header.hasRemaining()) {
            channel.write(header, header.position());
        }
        channel.force(true);
        channel.close();
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        done = true;
        return target;
    }

    private void flush() throws IOException {
        buffer.flip();
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
        buffer.clear();
    }

    /** Discards the temporary file unless {@link #commit()} succeeded. */
    @Override
    public void close() throws IOException {
        if (!done) {
            done = true;
            channel.close();
            Files.deleteIfExists(temp);
        }
    }
}
