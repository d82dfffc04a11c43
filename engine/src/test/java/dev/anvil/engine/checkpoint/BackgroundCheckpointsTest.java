package dev.anvil.engine.checkpoint;

import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackgroundCheckpointsTest {

    private static final RunManifest MANIFEST = new RunManifest(Map.of(), List.of("anvil", "train"), Map.of(),
            "test", "25", "cpu", "2026-11-22T00:00:00Z");

    @Test
    void closeWaitsForTheWriteAndTheCheckpointRestoresTheSnapshot(@TempDir Path dir) throws IOException {
        Checkpointer checkpointer = new Checkpointer(dir, 0);
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, GptConfig.preset("tiny"));
             AdamW adamw = new AdamW(backend, model.layout(), AdamWConfig.PYTORCH_DEFAULTS)) {
            model.initialize(5);
            float[] atSnapshot = model.readParameters();
            Path target;
            try (BackgroundCheckpoints writer = new BackgroundCheckpoints(checkpointer)) {
                target = writer.submit(Checkpointer.snapshot(model, adamw, new TrainingState(7, 7, 1, 1, 5, 4, 32), MANIFEST));
                model.initialize(6); // training goes on: the checkpoint must hold the weights of its step
            }
            assertEquals(checkpointer.pathFor(7), target);
            assertTrue(Files.exists(target.resolve(Checksums.FILE)), "written by the time close returns");
            assertEquals(7, Checkpointer.restore(target, model, adamw).step());
            assertArrayEquals(atSnapshot, model.readParameters());
        }
    }

    @Test
    void aFailedWriteIsReportedByTheNextCall(@TempDir Path dir) throws IOException {
        Path notADirectory = Files.writeString(dir.resolve("file"), "x");
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, GptConfig.preset("tiny"));
             AdamW adamw = new AdamW(backend, model.layout(), AdamWConfig.PYTORCH_DEFAULTS)) {
            BackgroundCheckpoints writer = new BackgroundCheckpoints(new Checkpointer(notADirectory, 0));
            writer.submit(Checkpointer.snapshot(model, adamw, new TrainingState(1, 1, 1, 1, 5, 4, 32), MANIFEST));
            assertThrows(IOException.class, writer::awaitPending);
            writer.close();
        }
    }
}
