package dev.anvil.engine.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenSourceTest {

    @TempDir
    Path dir;

    private static int[] readAll(TokenSource source) {
        int[] tokens = new int[(int) source.size()];
        source.read(0, tokens, 0, tokens.length);
        return tokens;
    }

    /** Writes val_000 (tokens 0..99), train_001 (100..249), train_000 (250..254) and an empty train_002. */
    private void writeShards() throws IOException {
        TokenShardTest.writeShard(dir.resolve("val_000.bin"), IntStream.range(0, 100).toArray());
        TokenShardTest.writeShard(dir.resolve("train_001.bin"), IntStream.range(100, 250).toArray());
        TokenShardTest.writeShard(dir.resolve("train_000.bin"), IntStream.range(250, 255).toArray());
        TokenShardTest.writeShard(dir.resolve("train_002.bin"), new int[0]);
        Files.writeString(dir.resolve("notes.md"), "not a shard");
    }

    @Test
    void directoryConcatenatesItsShardsInNameOrder() throws IOException {
        writeShards();
        TokenSource source = TokenSource.resolve(dir.toString(), Tokenizer.gpt2());
        int[] expected = IntStream.concat(IntStream.range(250, 255),
                IntStream.concat(IntStream.range(100, 250), IntStream.range(0, 100))).toArray();
        assertArrayEquals(expected, readAll(source));
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], source.get(i));
        }
        assertEquals(4, source.files().size());
    }

    @Test
    void globSelectsMatchingShardsInNameOrder() throws IOException {
        writeShards();
        TokenSource source = TokenSource.resolve(dir + "/train_*.bin", Tokenizer.gpt2());
        assertArrayEquals(IntStream.concat(IntStream.range(250, 255), IntStream.range(100, 250)).toArray(),
                readAll(source));
        int[] middle = new int[10];
        source.read(0, middle, 0, 10);
        assertArrayEquals(new int[] {250, 251, 252, 253, 254, 100, 101, 102, 103, 104}, middle);
    }

    @Test
    void singleShardFileIsItsOwnSource() throws IOException {
        writeShards();
        assertArrayEquals(IntStream.range(0, 100).toArray(),
                readAll(TokenSource.resolve(dir.resolve("val_000.bin").toString(), Tokenizer.gpt2())));
    }

    @Test
    void textFilesAreTokenizedAsParagraphDocuments() throws IOException {
        List<String> docs = GeneratedText.documents(9, 20_000, false);
        String text = GeneratedText.join(docs, false);
        Path plain = Files.writeString(dir.resolve("corpus.txt"), text);
        Path gzip = dir.resolve("corpus.txt.gz");
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(gzip))) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        }
        for (Tokenizer tokenizer : List.of(Tokenizer.gpt2(), Tokenizer.bytes())) {
            int[] expected = GeneratedText.expectedTokens(docs, tokenizer);
            assertArrayEquals(expected, readAll(TokenSource.resolve(plain.toString(), tokenizer)));
            assertArrayEquals(expected, readAll(TokenSource.resolve(gzip.toString(), tokenizer)));
        }
    }

    @Test
    void nothingFoundIsReportedWithThePath() throws IOException {
        writeShards();
        String missing = dir.resolve("nope").toString();
        NoSuchFileException e = assertThrows(NoSuchFileException.class,
                () -> TokenSource.resolve(missing, Tokenizer.gpt2()));
        assertTrue(e.getMessage().contains(missing), e.getMessage());
        String glob = dir + "/test_*.bin";
        e = assertThrows(NoSuchFileException.class, () -> TokenSource.resolve(glob, Tokenizer.gpt2()));
        assertTrue(e.getMessage().contains(glob) && e.getMessage().contains("no token shards"), e.getMessage());
        Path empty = Files.createDirectory(dir.resolve("empty"));
        assertThrows(NoSuchFileException.class, () -> TokenSource.resolve(empty.toString(), Tokenizer.gpt2()));
    }

    @Test
    void aFileThatIsNotAShardIsRejectedByName() throws IOException {
        Path notes = Files.writeString(dir.resolve("notes.md"), "x".repeat(2000));
        IOException e = assertThrows(IOException.class, () -> TokenSource.resolve(notes.toString(), Tokenizer.gpt2()));
        assertTrue(e.getMessage().contains(notes.toString()) && e.getMessage().contains("bad magic"), e.getMessage());
    }

    @Test
    void readsOutsideTheSourceAreRefused() {
        TokenSource source = TokenSource.ofTokens("t", new int[] {1, 2, 3});
        assertThrows(IndexOutOfBoundsException.class, () -> source.get(3));
        assertThrows(IndexOutOfBoundsException.class, () -> source.read(2, new int[2], 0, 2));
        assertEquals(3, source.get(2));
    }
}
