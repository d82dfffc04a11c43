package dev.anvil.engine.train;

import dev.anvil.engine.checkpoint.Checkpointer;
import dev.anvil.engine.checkpoint.RunManifest;
import dev.anvil.engine.checkpoint.TrainingState;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.data.TokenSource;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A step whose loss is not finite stops training with its number, and no checkpoint is written for it. */
class TrainerDivergenceTest {

    @TempDir
    Path dir;

    @Test
    void nonFiniteLossThrowsNamingTheStepAndWritesNoCheckpointForIt() throws Exception {
        GptConfig shape = GptConfig.of(1, 32, 2, 16, 300);
        TrainConfig config = new TrainConfig(2, 16, 1, 5, 1e-3f, "constant", 0, 0f,
                new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f), 7);
        int[] tokens = new int[2000];
        SplittableRandom random = new SplittableRandom(9);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = random.nextInt(shape.vocabSize());
        }
        DataLoader data = new DataLoader(TokenSource.ofTokens("random", tokens), 2, 16, 0, 1);
        Checkpointer checkpoints = new Checkpointer(dir, 0);
        RunManifest manifest = new RunManifest(Map.of(), List.of(), Map.of(), "test", "test", "cpu", "now");
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, shape);
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
