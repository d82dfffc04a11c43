package dev.anvil.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/** Writes files so that a crash leaves either the old file or the complete new one, never half of one. */
public final class AtomicFiles {

    /** Writes the content of a file to an open channel. */
    @FunctionalInterface
    public interface Content {
        void writeTo(FileChannel channel) throws IOException;
    }

    private AtomicFiles() {
    }

    /**
     * Writes {@code target}: {@code content} goes to a temporary file in the same directory (so the
     * rename stays within one file system), which is synced and then renamed over {@code target}.
     * On failure the temporary file is removed and an existing {@code target} is left as it was.
     */
    public static void write(Path target, Content content) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        // Not Files.createTempFile: its owner-only permissions would stick to the renamed file.
        Path tmp = dir.resolve("." + target.getFileName() + "."
                + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
        try {
            try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE)) {
                content.writeTo(channel);
                channel.force(true);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (Throwable t) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException e) {
                t.addSuppressed(e);
            }
            throw t;
        }
        syncDirectory(dir);
    }

    /** {@link #write} of a UTF-8 text. */
    public static void writeString(Path target, String text) throws IOException {
        write(target, channel -> writeFully(channel, ByteBuffer.wrap(text.getBytes(java.nio.charset.StandardCharsets.UTF_8))));
    }

    /** Writes all of {@code buffer}; a channel may take less than asked in one call. */
    static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /** Makes the rename durable; on Linux it is only on disk once the directory is synced. */
    public static void syncDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException e) {
            // Some platforms (Windows) cannot open a directory; the rename has happened regardless.
        }
    }
}
