package dev.anvil.engine.model;

import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU backend's hot loops allocate nothing: a training step's garbage does not grow with the batch. */
class TrainingStepAllocationTest {

    private static long allocatedByAllThreads() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long total = 0;
        for (long bytes : threads.getThreadAllocatedBytes(threads.getAllThreadIds())) {
            total += Math.max(0, bytes);
        }
        return total;
    }

    @Test
    void aStepAllocatesFarLessThanItsActivations() {
        GptConfig config = GptConfig.preset("tiny");
        int b = 8, t = 64;
        Random random = new Random(3);
        int[] inputs = random.ints(b * t, 0, config.vocabSize()).toArray();
        int[] targets = random.ints(b * t, 0, config.vocabSize()).toArray();
        try (CpuBackend backend = new CpuBackend(2); GptModel model = new GptModel(backend, config);
             AdamW adamw = new AdamW(backend, model.layout(), new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f))) {
            model.initialize(1);
            Runnable step = () -> {
                model.zeroGradients();
                model.forward(inputs, targets, b, t);
                model.backward();
                adamw.step(model.parameters(), model.gradients(), 1e-3f, adamw.clipScale(adamw.gradientNorm(model.gradients())));
            };
            for (int i = 0; i < 40; i++) {
                // The first steps allocate the activations, and run the Vector API interpreted, which boxes
                // every vector (some 24 MB a step here) until C2 compiles the loops.
                step.run();
            }
            // On a loaded machine C2 may compile the last loops later still: measure windows of steps until one is
            // in the steady state (or time runs out). A step that truly allocates never gets there.
            int steps = 10;
            long perStep = Long.MAX_VALUE;
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (perStep >= 256 * 1024 && System.nanoTime() < deadline) {
                long before = allocatedByAllThreads();
                for (int i = 0; i < steps; i++) {
                    step.run();
                }
                perStep = (allocatedByAllThreads() - before) / steps;
            }
            // One step's activations take about 4 MB here; what a step may allocate is a few small objects
            // per op (lambdas, loop descriptors), some tens of kilobytes.
            assertTrue(perStep < 256 * 1024, "a training step allocated " + perStep + " bytes");
        }
    }
}
