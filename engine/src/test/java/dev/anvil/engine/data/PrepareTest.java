package dev.anvil.engine.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PrepareTest {

    @TempDir
    Path dir;

    private Path writeText(String name, String text) throws IOException {
        Path path = dir.resolve(name);
        try (OutputStream out = name.endsWith(".gz") ? new GZIPOutputStream(Files.newOutputStream(path))
                : Files.newOutputStream(path)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        }
        return path;
    }

    private static int[] concat(List<Path> shards) throws IOException {
        List<int[]> parts = new ArrayList<>();
        for (Path shard : shards) {
            parts.add(TokenShardTest.readAll(TokenShard.open(shard)));
        }
        return parts.stream().flatMapToInt(Arrays::stream).toArray();
    }

    private static void assertShardSizes(List<Path> shards, int shardSize) throws IOException {
        for (Path shard : shards) {
            assertTrue(TokenShard.open(shard).size() <= shardSize, shard + " exceeds " + shardSize);
            assertTrue(TokenShard.open(shard).size() > 0, shard + " is empty");
        }
    }

    @Test
    void shardsHoldTheTokenizedDocumentsWithEndOfTextSeparatorsAndTheFirstTokensAsValidation() throws IOException {
        List<String> docs = GeneratedText.documents(1, 2_000_000, false);
        Path input = writeText("corpus.txt", GeneratedText.join(docs, false));
        int[] expected = GeneratedText.expectedTokens(docs, Tokenizer.gpt2());

        Prepare.Summary summary = Prepare.run(List.of(input), Prepare.Options.defaults(dir.resolve("out"))
                .withPrefix("gen").withShardSize(150_000).withVal(new Prepare.ValSplit.FirstTokens(200_000))
                .withThreads(2).withProgress(false));

        assertEquals(docs.size(), summary.documents());
        assertEquals(200_000, summary.valTokens());
        assertEquals(expected.length - 200_000, summary.trainTokens());
        assertEquals(List.of(dir.resolve("out/gen_val_000000.bin"), dir.resolve("out/gen_val_000001.bin")),
                summary.valFiles());
        assertEquals(dir.resolve("out/gen_train_000000.bin"), summary.trainFiles().getFirst());
        assertShardSizes(summary.valFiles(), 150_000);
        assertShardSizes(summary.trainFiles(), 150_000);
        assertArrayEquals(Arrays.copyOf(expected, 200_000), concat(summary.valFiles()));
        assertArrayEquals(Arrays.copyOfRange(expected, 200_000, expected.length), concat(summary.trainFiles()));
    }

    @Test
    void gzipLinesWithAValidationFractionSplitAtTheRoundedTokenCount() throws IOException {
        List<String> docs = GeneratedText.documents(2, 1_000_000, true);
        Path input = writeText("lines.txt.gz", GeneratedText.join(docs, true));
        int[] expected = GeneratedText.expectedTokens(docs, Tokenizer.gpt2());
        int valTokens = (int) Math.round(0.1 * expected.length);

        Prepare.Summary summary = Prepare.run(List.of(input), Prepare.Options.defaults(dir.resolve("out"))
                .withShardSize(40_000).withVal(new Prepare.ValSplit.Fraction(0.1))
                .withDocuments(DocumentSplit.LINES).withProgress(false));

        assertEquals(docs.size(), summary.documents());
        assertEquals(valTokens, summary.valTokens());
        // Without a prefix the names are what the README's globs (data/train_*.bin) expect.
        assertEquals(dir.resolve("out/val_000000.bin"), summary.valFiles().getFirst());
        assertEquals(dir.resolve("out/train_000000.bin"), summary.trainFiles().getFirst());
        assertShardSizes(summary.valFiles(), 40_000);
        assertShardSizes(summary.trainFiles(), 40_000);
        assertArrayEquals(Arrays.copyOf(expected, valTokens), concat(summary.valFiles()));
        assertArrayEquals(Arrays.copyOfRange(expected, valTokens, expected.length), concat(summary.trainFiles()));
        try (var files = Files.list(dir.resolve("out"))) {
            assertEquals(summary.valFiles().size() + summary.trainFiles().size(), files.count(),
                    "only the final shards remain");
        }
    }

    @Test
    void tinyPiecesStreamLongDocumentsWithoutChangingTheTokens() throws IOException {
        List<String> docs = GeneratedText.documents(3, 150_000, false);
        List<String> more = GeneratedText.documents(4, 50_000, false);
        Path first = writeText("a.txt", GeneratedText.join(docs, false));
        Path second = writeText("b.txt.gz", GeneratedText.join(more, false));
        List<String> all = new ArrayList<>(docs);
        all.addAll(more);

        for (Tokenizer tokenizer : List.of(Tokenizer.gpt2(), Tokenizer.bytes())) {
            Path out = dir.resolve("out-" + tokenizer.name());
            Prepare.Summary summary = Prepare.run(List.of(first, second), Prepare.Options.defaults(out)
                    .withTokenizer(tokenizer).withPieceChars(DocumentReader.MIN_CHARS).withThreads(3)
                    .withVal(new Prepare.ValSplit.FirstTokens(0)).withShardSize(10_000).withProgress(false));

            assertEquals(List.of(), summary.valFiles());
            assertArrayEquals(GeneratedText.expectedTokens(all, tokenizer), concat(summary.trainFiles()));
        }
    }

    @Test
    void refusesToMixWithShardsAlreadyInTheOutputDirectory() throws IOException {
        Path input = writeText("t.txt", "one document\n\nanother\n");
        Prepare.Options options = Prepare.Options.defaults(dir.resolve("out")).withProgress(false)
                .withVal(new Prepare.ValSplit.FirstTokens(1));
        Prepare.run(List.of(input), options);
        IOException e = assertThrows(IOException.class, () -> Prepare.run(List.of(input), options));
        assertTrue(e.getMessage().contains("already holds shards"), e.getMessage());
    }

    @Test
    void refusesWhenNothingIsLeftForTraining() throws IOException {
        Path input = writeText("t.txt", "short\n");
        IOException e = assertThrows(IOException.class, () -> Prepare.run(List.of(input),
                Prepare.Options.defaults(dir.resolve("out")).withProgress(false)
                        .withVal(new Prepare.ValSplit.FirstTokens(1_000))));
        assertTrue(e.getMessage().contains("no training tokens"), e.getMessage());
    }

    @Test
    void missingInputIsNamed() {
        Path missing = dir.resolve("nope.txt");
        IOException e = assertThrows(IOException.class, () -> Prepare.run(List.of(missing),
                Prepare.Options.defaults(dir.resolve("out")).withProgress(false)));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }
}
