package dev.anvil.engine.train;

import dev.anvil.collective.CommunicatorOptions;
import dev.anvil.collective.LocalCluster;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.engine.checkpoint.Checkpointer;
import dev.anvil.engine.checkpoint.RunManifest;
import dev.anvil.engine.checkpoint.TrainingState;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.data.TokenSource;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.DivergingWeights;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.parallel.DataParallel;
import dev.anvil.engine.parallel.GradientSync;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A step whose loss is not finite stops training with its number, and no checkpoint is written for it. */
class TrainerDivergenceTest {

    private static final GptConfig SHAPE = GptConfig.of(1, 32, 2, 16, 300);

    @TempDir
    Path dir;

    private static TokenSource randomTokens() {
        int[] tokens = new int[2000];
        SplittableRandom random = new SplittableRandom(9);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = random.nextInt(SHAPE.vocabSize());
        }
        return TokenSource.ofTokens("random", tokens);
    }

    @Test
    void nonFiniteLossThrowsNamingTheStepAndWritesNoCheckpointForIt() throws Exception {
        TrainConfig config = new TrainConfig(2, 16, 1, 5, 1e-3f, "constant", 0, 0f,
                new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f), 7);
        DataLoader data = new DataLoader(randomTokens(), 2, 16, 0, 1);
        Checkpointer checkpoints = new Checkpointer(dir, 0);
        RunManifest manifest = new RunManifest(Map.of(), List.of(), Map.of(), "test", "test", "cpu", "now");
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, SHAPE);
             AdamW adamw = new AdamW(backend, model.layout(), config.adamw())) {
            model.initialize(config.seed());
            List<Integer> saved = new ArrayList<>();
            List<StepMetrics> steps = new ArrayList<>();
            Trainer trainer = new Trainer(model, adamw, config)
                    .onStep(steps::add)
                    .checkpoints(step -> {
                        saved.add(step);
                        return checkpoints.save(model, adamw, new TrainingState(step, step, 1, 1, config.seed(),
                                config.batchSize(), config.seqLen()), manifest);
                    }, 1);

            // Two good steps, as a run stopped after step 2 and resumed would have done.
            TrainConfig twoSteps = new TrainConfig(2, 16, 1, 2, 1e-3f, "constant", 0, 0f, config.adamw(), 7);
            new Trainer(model, adamw, twoSteps).checkpoints(step -> checkpoints.save(model, adamw,
                    new TrainingState(step, step, 1, 1, config.seed(), config.batchSize(), config.seqLen()), manifest), 1)
                    .run(data::load, 0);
            Path good = dir.resolve("step_00000002");
            assertEquals(Optional.of(good), checkpoints.latestValid(w -> { }));
            Map<String, String> goodFiles = checksums(good);

            // A NaN weight (the final LayerNorm's gain) poisons every logit of step 3.
            float[] params = model.readParameters();
            params[(int) model.layout().tensor("transformer.ln_f.weight").offset()] = Float.NaN;
            model.writeParameters(params);
            int updates = adamw.stepCount();

            TrainingDivergedException e = assertThrows(TrainingDivergedException.class,
                    () -> trainer.run(data::load, 2));
            assertEquals(3, e.step());
            assertTrue(e.getMessage().startsWith("step 3: loss NaN"), e.getMessage());
            assertTrue(saved.isEmpty(), "checkpoints written: " + saved);
            assertTrue(steps.isEmpty(), "the diverged step was reported as a step: " + steps);
            assertEquals(updates, adamw.stepCount(), "the optimizer stepped on a diverged step");
            assertFalse(Files.exists(dir.resolve("step_00000003")));
            assertEquals(Optional.of(good), checkpoints.latestValid(w -> { }));
            assertEquals(goodFiles, checksums(good));
        }
    }

    /**
     * Rank 1's weights give it a finite loss but gradients whose norm overflows; rank 0's are healthy. The
     * all-reduce hands rank 1's gradients to rank 0 too, so both stop at step 1, before any update, and neither
     * waits for the other past the peer timeout.
     */
    @Test
    void nonFiniteGradientsOnOneRankStopEveryRankAtTheSameStepBeforeTheUpdate() throws Exception {
        TrainConfig config = new TrainConfig(2, 16, 1, 3, 1e-3f, "constant", 0, 0f,
                new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 0f), 7);
        TokenSource source = randomTokens();
        CommunicatorOptions options = CommunicatorOptions.defaults(JobToken.random())
                .withTimeouts(Duration.ofSeconds(20), Duration.ofSeconds(60));
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (LocalCluster cluster = LocalCluster.start(2, options)) {
            List<Future<Throwable>> ranks = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                ranks.add(pool.submit(() -> {
                    try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, SHAPE);
                         AdamW adamw = new AdamW(backend, model.layout(), config.adamw());
                         GradientSync sync = new GradientSync(cluster.rank(rank), backend, model.gradients(),
                                 GradientSync.DEFAULT_BUCKET_BYTES)) {
                        model.initialize(config.seed());
                        if (rank == 1) {
                            model.writeParameters(DivergingWeights.finiteLossInfiniteGradientNorm(SHAPE,
                                    model.readParameters()));
                        }
                        float[] before = model.readParameters();
                        List<StepMetrics> steps = new ArrayList<>();
                        Trainer trainer = new Trainer(model, adamw, config)
                                .dataParallel(new DataParallel(cluster.rank(rank)), sync).onStep(steps::add);
                        DataLoader data = new DataLoader(source, 2, 16, rank, 2);
                        Throwable thrown = assertThrows(Throwable.class, () -> trainer.run(data::load, 0));
                        assertTrue(steps.isEmpty(), "rank " + rank + " reported a diverged step: " + steps);
                        assertArrayEquals(before, model.readParameters(), "rank " + rank + " updated its weights");
                        return thrown;
                    }
                }));
            }
            for (int r = 0; r < 2; r++) {
                Throwable thrown = ranks.get(r).get(2, TimeUnit.MINUTES);
                TrainingDivergedException e = assertInstanceOf(TrainingDivergedException.class, thrown,
                        "rank " + r + " should stop at the diverged step");
                assertEquals(1, e.step(), "rank " + r);
                assertTrue(e.getMessage().matches("step 1: loss [0-9.]+, gradient norm (Infinity|NaN): .*"),
                        "rank " + r + ": " + e.getMessage());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static Map<String, String> checksums(Path dir) throws Exception {
        Map<String, String> sums = new java.util.TreeMap<>();
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                sums.put(f.getFileName().toString(), dev.anvil.engine.checkpoint.Checksums.sha256(f));
            }
        }
        return sums;
    }
}
