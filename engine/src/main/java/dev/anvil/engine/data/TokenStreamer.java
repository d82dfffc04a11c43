package dev.anvil.engine.data;

import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.GZIPInputStream;

/**
 * Tokenizes UTF-8 text files (gzip when named {@code .gz}) in bounded memory: documents are read in pieces of
 * at most {@code pieceChars} characters, batches of pieces are tokenized on {@code threads} threads, and the
 * tokens reach the sink in input order, each document preceded by end-of-text. At most {@code 2 * threads}
 * batches are in flight, so memory stays a small multiple of the piece size.
 */
final class TokenStreamer {

    /** Receives tokens in order. */
    interface Sink {
        void accept(int[] tokens) throws IOException;
    }

    /** Told how far the input has been read, in (compressed) file bytes, and how many tokens came out. */
    interface Progress {
        void update(long bytesRead, long tokens);
    }

    private final Tokenizer tokenizer;
    private final DocumentSplit split;
    private final int pieceChars;
    private final int threads;

    TokenStreamer(Tokenizer tokenizer, DocumentSplit split, int pieceChars, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.tokenizer = tokenizer;
        this.split = split;
        this.pieceChars = pieceChars;
        this.threads = threads;
    }

    /** Tokenizes {@code inputs} in order into {@code sink}; returns the number of documents. */
    long run(List<Path> inputs, Sink sink, Progress progress) throws IOException {
        ExecutorService pool = Executors.newFixedThreadPool(threads, Thread.ofPlatform().daemon().factory());
        ArrayDeque<Future<int[]>> inFlight = new ArrayDeque<>();
        long[] bytesRead = {0};
        long documents = 0;
        long tokens = 0;
        try {
            for (Path input : inputs) {
                try (Reader reader = open(input, bytesRead)) {
                    DocumentReader pieces = new DocumentReader(reader, split, pieceChars);
                    List<DocumentReader.Piece> batch = new ArrayList<>();
                    int batchChars = 0;
                    for (DocumentReader.Piece piece = pieces.next(); piece != null; piece = pieces.next()) {
                        if (piece.startsDocument()) {
                            documents++;
                        }
                        if (batchChars + piece.text().length() > pieceChars) {
                            List<DocumentReader.Piece> full = batch;
                            inFlight.add(pool.submit(() -> encode(full)));
                            batch = new ArrayList<>();
                            batchChars = 0;
                        }
                        batch.add(piece);
                        batchChars += piece.text().length();
                        while (inFlight.size() >= 2 * threads) {
                            tokens += drainOne(inFlight, sink);
                            progress.update(bytesRead[0], tokens);
                        }
                    }
                    List<DocumentReader.Piece> last = batch;
                    inFlight.add(pool.submit(() -> encode(last)));
                }
            }
            while (!inFlight.isEmpty()) {
                tokens += drainOne(inFlight, sink);
                progress.update(bytesRead[0], tokens);
            }
            return documents;
        } finally {
            pool.shutdownNow();
        }
    }

    private int[] encode(List<DocumentReader.Piece> batch) {
        int[][] parts = new int[batch.size()][];
        int total = 0;
        for (int i = 0; i < parts.length; i++) {
            parts[i] = tokenizer.encode(batch.get(i).text());
            total += parts[i].length + (batch.get(i).startsDocument() ? 1 : 0);
        }
        int[] tokens = new int[total];
        int at = 0;
        for (int i = 0; i < parts.length; i++) {
            if (batch.get(i).startsDocument()) {
                tokens[at++] = tokenizer.endOfText();
            }
            System.arraycopy(parts[i], 0, tokens, at, parts[i].length);
            at += parts[i].length;
        }
        return tokens;
    }

    private static int drainOne(ArrayDeque<Future<int[]>> inFlight, Sink sink) throws IOException {
        int[] tokens;
        try {
            tokens = inFlight.poll().get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while tokenizing", e);
        } catch (ExecutionException e) {
            throw new IOException("tokenizing failed: " + e.getCause(), e.getCause());
        }
        sink.accept(tokens);
        return tokens.length;
    }

    /** Opens a text file for reading, counting the file bytes consumed (compressed, for .gz) into {@code counter}. */
    static Reader open(Path file, long[] counter) throws IOException {
        InputStream raw = new FilterInputStream(Files.newInputStream(file)) {
            @Override
            public int read() throws IOException {
                int b = super.read();
                counter[0] += b < 0 ? 0 : 1;
                return b;
            }

            @Override
            public int read(byte[] bytes, int offset, int length) throws IOException {
                int n = super.read(bytes, offset, length);
                counter[0] += Math.max(n, 0);
                return n;
            }
        };
        InputStream in = isGzip(file) ? new GZIPInputStream(raw, 1 << 16) : new BufferedInputStream(raw, 1 << 16);
        // Malformed UTF-8 becomes U+FFFD rather than failing a long run on one bad byte.
        return new InputStreamReader(in, StandardCharsets.UTF_8);
    }

    static boolean isGzip(Path file) {
        return file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".gz");
    }
}
