package dev.anvil.engine.checkpoint;

import dev.anvil.collective.LocalCluster;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.data.TokenSource;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.model.ParameterLayout;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.optim.ParameterShard;
import dev.anvil.engine.parallel.DataParallel;
import dev.anvil.engine.parallel.GradientBuckets;
import dev.anvil.engine.train.OptimizerSetup;
import dev.anvil.engine.train.TrainConfig;
import dev.anvil.engine.train.Trainer;
import dev.anvil.engine.zero.ShardPlan;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two BF16 ranks with sharded optimizer state save a checkpoint together; its fp32 master weights and
 * moments come back exactly, into one rank's whole optimizer and into four ranks' shards.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ShardedCheckpointsTest {

    private static final GptConfig MODEL = GptConfig.preset("tiny");
    private static final TrainConfig CONFIG = new TrainConfig(2, 16, 1, 2, 3e-3f, "constant", 0, 0f,
            new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f), 3);
    private static final RunManifest MANIFEST = new RunManifest(Map.of(), List.of("anvil", "train"), Map.of(),
            "test", "25", "cpu", "2026-12-01T00:00:00Z");
    private static final long N = ParameterLayout.of(MODEL).totalSize();
    /** Small buckets, so each rank owns several runs of the parameter buffer. */
    private static final long BUCKET_BYTES = 8 * 1024;

    @TempDir
    static Path dir;

    private Path saved;
    private List<Held> held;

    /** What a rank held after its last step: its shard, moments and master weights. */
    private record Held(ParameterShard shard, AdamW.State moments, float[] master) {
    }

    private Held trainAndSave(LocalCluster cluster, int rank, Checkpointer checkpointer) throws IOException {
        Random random = new Random(1);
        int[] ids = random.ints(4_000, 0, MODEL.vocabSize()).toArray();
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, MODEL, DType.BF16, false);
             OptimizerSetup setup = new OptimizerSetup(backend, model, CONFIG.adamw(), cluster.rank(rank), true,
                     BUCKET_BYTES);
             ShardedCheckpoints writer = new ShardedCheckpoints(checkpointer, cluster.rank(rank), setup.shards(2))) {
            setup.initialize(CONFIG.seed());
            new Trainer(model, setup.optimizer(), CONFIG).dataParallel(new DataParallel(cluster.rank(rank)), setup.sync())
                    .checkpoints(step -> writer.save(setup.shardSnapshot(new TrainingState(step, step, 1, 2, 3, 2, 16),
                            rank == 0 ? MANIFEST : null)), 0)
                    .onStep(m -> {
                        try {
                            writer.poll();
                        } catch (IOException e) {
                            throw new UncheckedIOException(e);
                        }
                    })
                    .run(new DataLoader(TokenSource.ofTokens("random", ids), 2, 16, rank, 2)::load, 0);
            writer.finish();
            ShardedCheckpoints.Snapshot held = setup.shardSnapshot(null, null);
            return new Held(setup.shards(2).get(rank), held.moments(), held.master());
        }
    }

    private static float[] assemble(List<Held> ranks, Function<Held, float[]> part) {
        float[] whole = new float[(int) N];
        for (Held h : ranks) {
            for (ParameterShard.Run run : h.shard().runs()) {
                System.arraycopy(part.apply(h), (int) run.local(), whole, (int) run.offset(), (int) run.length());
            }
        }
        return whole;
    }

    @BeforeAll
    void trainTwoRanksAndSave() throws Exception {
        Checkpointer checkpointer = new Checkpointer(dir, 0);
        held = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (LocalCluster cluster = LocalCluster.start(2)) {
            List<Future<Held>> futures = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                futures.add(pool.submit(() -> trainAndSave(cluster, rank, checkpointer)));
            }
            for (Future<Held> f : futures) {
                held.add(f.get(2, TimeUnit.MINUTES));
            }
        } finally {
            pool.shutdownNow();
        }
        saved = checkpointer.pathFor(2);
        assertEquals(List.of(saved), checkpointer.list(), "one checkpoint, complete");
        assertTrue(Files.exists(saved.resolve("optimizer-00001-of-00002.safetensors")));
    }

    @Test
    void bf16MasterWeightsAndMomentsSavedByTwoRanksRestoreExactlyIntoOneOrFourRanks() throws Exception {
        float[] master = assemble(held, Held::master);
        float[] m = assemble(held, h -> h.moments().m());
        float[] v = assemble(held, h -> h.moments().v());

        try (CpuBackend backend = new CpuBackend(1); GptModel whole = new GptModel(backend, MODEL, DType.BF16);
             AdamW adamw = new AdamW(backend, whole.layout(), CONFIG.adamw())) {
            assertEquals(2, Checkpointer.restore(saved, whole, adamw).step());
            assertArrayEquals(master, whole.readParameters(), "the master weights, from the shards");
            assertArrayEquals(m, adamw.exportState().m());
            assertArrayEquals(v, adamw.exportState().v());
            assertEquals(2, adamw.exportState().step());
        }
        // Four ranks: each restores its own shard of the same checkpoint.
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, MODEL, DType.BF16, false)) {
            for (int r = 0; r < 4; r++) {
                ParameterShard shard = new ShardPlan(GradientBuckets.of(model.layout(), BUCKET_BYTES, 2), r, 4).shard();
                float[][] restored = new float[1][];
                try (AdamW adamw = new AdamW(backend, model.layout(), CONFIG.adamw(), shard)) {
                    Checkpointer.restore(saved, model, adamw, packed -> restored[0] = packed);
                    assertArrayEquals(shard.gather(master), restored[0], "rank " + r + "'s master weights");
                    assertArrayEquals(shard.gather(m), adamw.exportState().m(), "rank " + r + "'s first moments");
                    assertArrayEquals(shard.gather(v), adamw.exportState().v(), "rank " + r + "'s second moments");
                }
            }
        }
    }

    @Test
    void aCorruptOrMissingShardIsNamedAndNothingIsRestored() throws Exception {
        Path copy = dir.resolve("copy");
        try (var walk = Files.walk(saved)) {
            for (Path p : walk.toList()) {
                Files.copy(p, copy.resolve(saved.relativize(p).toString()));
            }
        }
        Path shard = copy.resolve("optimizer-00001-of-00002.safetensors");
        byte[] bytes = Files.readAllBytes(shard);
        bytes[bytes.length - 1] ^= 1;
        Files.write(shard, bytes);
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, MODEL, DType.BF16);
             AdamW adamw = new AdamW(backend, model.layout(), CONFIG.adamw())) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpointer.restore(copy, model, adamw));
            assertTrue(e.getMessage().endsWith("optimizer-00001-of-00002.safetensors does not match its checksum "
                    + "(corrupt or truncated)"), e.getMessage());
            Files.delete(shard);
            e = assertThrows(CheckpointException.class, () -> Checkpointer.restore(copy, model, adamw));
            assertTrue(e.getMessage().endsWith("optimizer-00001-of-00002.safetensors is missing"), e.getMessage());
            assertEquals(0, adamw.stepCount(), "nothing restored");
        }
    }
}
