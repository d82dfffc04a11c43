package dev.anvil.engine.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataLoaderTest {

    @TempDir
    Path dir;

    /** The contract, computed directly: rank r at step k reads B*T+1 tokens from (k*R + r)*B*T, wrapping. */
    private static void assertFollowsContract(int[] tokens, TokenSource source, int b, int t, int worldSize,
                                              int steps) {
        long n = tokens.length;
        for (int rank = 0; rank < worldSize; rank++) {
            DataLoader loader = new DataLoader(source, b, t, rank, worldSize);
            int[] inputs = new int[b * t];
            int[] targets = new int[b * t];
            for (int step = 0; step < steps; step++) {
                long start = ((long) step * worldSize + rank) * b * t;
                int[] expectedInputs = new int[b * t];
                int[] expectedTargets = new int[b * t];
                for (int i = 0; i < b * t; i++) {
                    expectedInputs[i] = tokens[(int) ((start + i) % n)];
                    expectedTargets[i] = tokens[(int) ((start + i + 1) % n)];
                }
                long epoch = loader.load(step, inputs, targets);
                String where = "rank " + rank + " step " + step;
                assertArrayEquals(expectedInputs, inputs, where);
                assertArrayEquals(expectedTargets, targets, where);
                assertEquals(start, loader.position(step), where);
                assertEquals(start / n, epoch, where);
                assertEquals(epoch, loader.epoch(step), where);
            }
        }
    }

    @Test
    void singleRankReadsConsecutiveBatchesAndWrapsIntoTheNextEpoch() {
        int[] tokens = TokenShardTest.randomTokens(1000, 5);
        // 4*16 = 64 tokens a step: step 15 crosses the end (960..1024), steps 16+ are in epoch 1.
        assertFollowsContract(tokens, TokenSource.ofTokens("random", tokens), 4, 16, 1, 40);
    }

    @Test
    void threeRanksInterleaveBatchesAcrossShardBoundariesAndWrapAround() throws IOException {
        int[] tokens = TokenShardTest.randomTokens(2_345, 6);
        List<TokenShard> shards = new ArrayList<>();
        int[] cuts = {0, 700, 701, 1800, 2345};
        for (int i = 0; i + 1 < cuts.length; i++) {
            int[] part = Arrays.copyOfRange(tokens, cuts[i], cuts[i + 1]);
            shards.add(TokenShard.open(TokenShardTest.writeShard(dir.resolve("s" + i + ".bin"), part)));
        }
        TokenSource source = TokenSource.ofShards("shards", shards);
        assertEquals(tokens.length, source.size());
        assertFollowsContract(tokens, source, 3, 20, 3, 45);
    }

    @Test
    void resumingAtAStepNeedsNoOtherState() {
        int[] tokens = TokenShardTest.randomTokens(500, 7);
        TokenSource source = TokenSource.ofTokens("random", tokens);
        DataLoader warm = new DataLoader(source, 2, 8, 1, 2);
        int[] in = new int[16];
        int[] out = new int[16];
        for (int step = 0; step < 30; step++) {
            warm.load(step, in, out);
        }
        int[] fresh = new int[16];
        int[] freshOut = new int[16];
        new DataLoader(source, 2, 8, 1, 2).load(29, fresh, freshOut);
        assertArrayEquals(in, fresh);
        assertArrayEquals(out, freshOut);
    }

    @Test
    void refusesASourceShorterThanOneBatchPlusOne() {
        TokenSource source = TokenSource.ofTokens("small", new int[64]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new DataLoader(source, 4, 16, 0, 1));
        assertTrue(e.getMessage().contains("65 tokens are needed"), e.getMessage());
        new DataLoader(TokenSource.ofTokens("just enough", new int[65]), 4, 16, 0, 1);
    }

    @Test
    void refusesABadRankAndShortBuffers() {
        TokenSource source = TokenSource.ofTokens("t", new int[100]);
        assertThrows(IllegalArgumentException.class, () -> new DataLoader(source, 2, 4, 3, 3));
        DataLoader loader = new DataLoader(source, 2, 4, 0, 1);
        assertThrows(IllegalArgumentException.class, () -> loader.load(0, new int[7], new int[8]));
    }
}
