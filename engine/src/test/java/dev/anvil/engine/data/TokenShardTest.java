package dev.anvil.engine.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenShardTest {

    @TempDir
    Path dir;

    static int[] randomTokens(int n, long seed) {
        Random random = new Random(seed);
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = random.nextInt(TokenShard.MAX_TOKEN + 1);
        }
        return tokens;
    }

    static Path writeShard(Path path, int[] tokens) throws IOException {
        try (ShardWriter writer = ShardWriter.create(path)) {
            writer.write(tokens, 0, tokens.length);
            return writer.commit();
        }
    }

    static int[] readAll(TokenShard shard) {
        int[] tokens = new int[(int) shard.size()];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = shard.get(i);
        }
        return tokens;
    }

    @Test
    void writtenTokensReadBackIdenticallyIncludingTheUint16Extremes() throws IOException {
        int[] tokens = randomTokens(100_003, 1);
        tokens[0] = 0;
        tokens[1] = 65535;
        Path path = writeShard(dir.resolve("train_000.bin"), tokens);

        TokenShard shard = TokenShard.open(path);
        assertEquals(tokens.length, shard.size());
        assertArrayEquals(tokens, readAll(shard));
        assertEquals(TokenShard.HEADER_BYTES + 2L * tokens.length, Files.size(path));
    }

    @Test
    void headerFollowsTheLlmcLayout() throws IOException {
        Path path = writeShard(dir.resolve("s.bin"), new int[] {7, 258});
        ByteBuffer file = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(20240520, file.getInt(0));
        assertEquals(1, file.getInt(4));
        assertEquals(2, file.getInt(8));
        assertEquals(0, file.getInt(12));
        assertEquals(7, file.getShort(1024));
        assertEquals(258, file.getShort(1026));
    }

    @Test
    void emptyShardIsValid() throws IOException {
        assertEquals(0, TokenShard.open(writeShard(dir.resolve("empty.bin"), new int[0])).size());
    }

    @Test
    void writerRefusesTokensThatDoNotFitInUint16AndLeavesNoFile() throws IOException {
        Path path = dir.resolve("big.bin");
        try (ShardWriter writer = ShardWriter.create(path)) {
            writer.write(65535);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> writer.write(65536));
            assertTrue(e.getMessage().contains("65536"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> writer.write(-1));
        }
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "an uncommitted writer must leave nothing behind");
        }
    }

    @Test
    void commitReplacesAnExistingShard() throws IOException {
        Path path = writeShard(dir.resolve("s.bin"), new int[] {1, 2, 3});
        writeShard(path, new int[] {4});
        assertArrayEquals(new int[] {4}, readAll(TokenShard.open(path)));
    }

    private Path corrupt(int magic, int version, int count, int tokensInFile) throws IOException {
        ByteBuffer file = ByteBuffer.allocate(TokenShard.HEADER_BYTES + 2 * tokensInFile)
                .order(ByteOrder.LITTLE_ENDIAN);
        file.putInt(magic).putInt(version).putInt(count);
        Path path = dir.resolve("train_000.bin");
        Files.write(path, file.array());
        return path;
    }

    private static String openError(Path path) {
        IOException e = assertThrows(IOException.class, () -> TokenShard.open(path));
        assertTrue(e.getMessage().contains(path.toString()), "error should name the file: " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void badMagicIsReportedWithTheFileName() throws IOException {
        String message = openError(corrupt(12345, 1, 0, 0));
        assertTrue(message.contains("bad magic 12345 (expected 20240520)"), message);
    }

    @Test
    void unsupportedVersionIsReportedWithTheFileName() throws IOException {
        String message = openError(corrupt(TokenShard.MAGIC, 7, 0, 0));
        assertTrue(message.contains("unsupported version 7"), message);
    }

    @Test
    void countLargerThanTheFileIsReportedAsTruncation() throws IOException {
        String message = openError(corrupt(TokenShard.MAGIC, 1, 1000, 10));
        assertTrue(message.contains("1000 tokens") && message.contains("truncated"), message);
    }

    @Test
    void negativeCountAndTrailingBytesAreReported() throws IOException {
        assertTrue(openError(corrupt(TokenShard.MAGIC, 1, -5, 0)).contains("negative token count -5"));
        assertTrue(openError(corrupt(TokenShard.MAGIC, 1, 3, 10)).contains("trailing data"));
    }

    @Test
    void truncatedShardIsReportedWithTheFileName() throws IOException {
        Path path = writeShard(dir.resolve("train_000.bin"), randomTokens(500, 2));
        byte[] bytes = Files.readAllBytes(path);
        Files.write(path, Arrays.copyOf(bytes, bytes.length - 3));
        assertTrue(openError(path).contains("truncated"));

        Files.write(path, Arrays.copyOf(bytes, 100));
        assertTrue(openError(path).contains("shorter than the 1024-byte header"));
    }

    @Test
    void missingShardIsReportedWithItsPath() {
        Path path = dir.resolve("data/train_000.bin");
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> TokenShard.open(path));
        assertTrue(e.getMessage().contains(path.toString()), e.getMessage());
        assertFalse(Files.exists(path));
    }
}
