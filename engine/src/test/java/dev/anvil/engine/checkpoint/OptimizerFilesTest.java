package dev.anvil.engine.checkpoint;

import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.ParameterShard;
import dev.anvil.engine.parallel.GradientBuckets.Bucket;
import dev.anvil.engine.zero.ShardPlan;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Optimizer state saved by R ranks reads back, exactly, into any other sharding. */
class OptimizerFilesTest {

    private static final int N = 1000;
    /** Buckets as a backward pass finishes them: from the end of the buffer to its start, uneven. */
    private static final List<Bucket> BUCKETS = List.of(new Bucket(700, 300), new Bucket(257, 443), new Bucket(0, 257));

    @TempDir
    Path dir;

    private static float[] random(long seed) {
        Random random = new Random(seed);
        float[] values = new float[N];
        for (int i = 0; i < N; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    private final float[] m = random(1);
    private final float[] v = random(2);
    private final float[] master = random(3);

    private static List<ParameterShard> shards(List<Bucket> buckets, int ranks) {
        List<ParameterShard> shards = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            shards.add(new ShardPlan(buckets, r, ranks).shard());
        }
        return shards;
    }

    /** Writes what {@code ranks} ranks of ZeRO-1 over {@link #BUCKETS} would. */
    private void writeSharded(int ranks, boolean withMaster) throws IOException {
        List<ParameterShard> shards = shards(BUCKETS, ranks);
        for (int r = 0; r < ranks; r++) {
            ParameterShard s = shards.get(r);
            OptimizerFiles.writeShard(dir, r, ranks, new AdamW.State(9, s.gather(m), s.gather(v)),
                    withMaster ? s.gather(master) : null);
        }
        OptimizerFiles.writeIndex(dir, 9, N, shards, withMaster);
    }

    private void assertReadsBackInto(List<ParameterShard> targets, boolean withMaster) throws IOException {
        try (OptimizerFiles.Reader reader = OptimizerFiles.open(dir, N)) {
            assertTrue(reader.hasMaster() == withMaster);
            for (ParameterShard target : targets) {
                assertArrayEquals(target.gather(m), reader.read(OptimizerFiles.EXP_AVG, target));
                assertArrayEquals(target.gather(v), reader.read(OptimizerFiles.EXP_AVG_SQ, target));
                if (withMaster) {
                    assertArrayEquals(target.gather(master), reader.read(OptimizerFiles.MASTER, target));
                }
            }
        }
    }

    @Test
    void stateShardedOverTwoRanksReadsBackWholeOrOverFourOrThreeRanksExactly() throws IOException {
        writeSharded(2, true);
        assertReadsBackInto(List.of(ParameterShard.whole(N)), true);
        assertReadsBackInto(shards(BUCKETS, 4), true);
        // Other buckets too: a run may resume with another bucket size.
        assertReadsBackInto(shards(List.of(new Bucket(500, 500), new Bucket(0, 500)), 3), true);
    }

    @Test
    void stateShardedOverFourRanksReadsBackIntoOneRankExactly() throws IOException {
        writeSharded(4, false);
        assertReadsBackInto(List.of(ParameterShard.whole(N)), false);
    }

    @Test
    void wholeStateReadsBackIntoShards() throws IOException {
        OptimizerFiles.writeWhole(dir, new AdamW.State(9, m, v));
        assertReadsBackInto(shards(BUCKETS, 2), false);
    }

    @Test
    void aMissingShardIsNamed() throws IOException {
        writeSharded(2, false);
        Files.delete(dir.resolve("optimizer-00001-of-00002.safetensors"));
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptimizerFiles.open(dir, N));
        assertTrue(e.getMessage().contains("optimizer-00001-of-00002.safetensors is missing"), e.getMessage());
    }

    /** Two ranks' state whose index has {@code regex} replaced must be refused, saying {@code problem}. */
    private void assertEditedIndexIsRejected(String regex, String replacement, String problem) throws IOException {
        writeSharded(2, false);
        Path index = dir.resolve(OptimizerFiles.INDEX);
        String text = Files.readString(index, StandardCharsets.UTF_8);
        Files.writeString(index, text.replaceFirst(regex, replacement), StandardCharsets.UTF_8);
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptimizerFiles.open(dir, N));
        assertTrue(e.getMessage().contains(problem), e.getMessage());
    }

    @Test
    void anIndexWhoseRunsDisagreeWithTheFilesOrLeaveGapsIsRejected() throws IOException {
        // Rank 0's first run [0, 128) shrinks to [1, 128): its file holds one value more than its runs.
        assertEditedIndexIsRejected("\\[0,128]", "[1,127]",
                "optimizer-00000-of-00002.safetensors should hold 498 F32 values of exp_avg, holds 499");
        // It starts one element late instead: parameter 0 belongs to no file.
        assertEditedIndexIsRejected("\\[0,128]", "[1,128]", "leave a gap at parameter 0");
    }

    @Test
    void stateForAnotherModelSizeIsRejected() throws IOException {
        writeSharded(2, false);
        CheckpointException e = assertThrows(CheckpointException.class, () -> OptimizerFiles.open(dir, N + 1));
        assertTrue(e.getMessage().contains("for 1000 parameters, the model has 1001"), e.getMessage());
    }

    @Test
    void anIndexNamingAFileOutsideTheCheckpointIsRejected() throws IOException {
        assertEditedIndexIsRejected("optimizer-00001-of-00002\\.safetensors", "../x.safetensors",
                "names an optimizer shard badly");
    }
}
