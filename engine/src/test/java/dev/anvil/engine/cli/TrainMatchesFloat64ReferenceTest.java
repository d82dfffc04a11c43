package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.anvil.engine.data.ShardWriter;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.TensorDtype;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.model.ParameterLayout;
import dev.anvil.engine.model.ReferenceGpt64;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code anvil train --init-from} follows an independent float64 computation step by step: the
 * float64 GPT-2 of {@link ReferenceGpt64} and an AdamW written here from PyTorch's formula, fed the
 * batches the data-order contract says the trainer reads.
 */
class TrainMatchesFloat64ReferenceTest {

    private static final GptConfig CONFIG = GptConfig.of(2, 32, 4, 16, 300);
    private static final int B = 2;
    private static final int T = 16;
    private static final int STEPS = 10;
    private static final float LR = 1e-3f;
    private static final float BETA1 = 0.9f;
    private static final float BETA2 = 0.95f;
    private static final float EPS = 1e-8f;
    private static final float WEIGHT_DECAY = 0.1f;

    @TempDir
    Path dir;

    @Test
    void constantLearningRateRunFollowsFloat64ReferenceLossesForTenSteps() throws Exception {
        Path model = dir.resolve("model");
        float[] initial;
        try (CpuBackend backend = new CpuBackend(1); GptModel gpt = new GptModel(backend, CONFIG)) {
            gpt.initialize(42);
            initial = gpt.readParameters();
        }
        HfModelFiles.save(model, CONFIG, initial, TensorDtype.F32);

        // A stream with some structure (each token mostly follows from the previous one), so the
        // loss moves noticeably in ten steps.
        int[] tokens = new int[3000];
        SplittableRandom random = new SplittableRandom(5);
        for (int i = 1; i < tokens.length; i++) {
            tokens[i] = random.nextInt(4) == 0 ? random.nextInt(CONFIG.vocabSize())
                    : (tokens[i - 1] * 7 + 3) % CONFIG.vocabSize();
        }
        Path shard = dir.resolve("tokens.bin");
        try (ShardWriter writer = ShardWriter.create(shard)) {
            writer.write(tokens, 0, tokens.length);
            writer.commit();
        }

        Path metrics = dir.resolve("m.jsonl");
        Cli.ok("train", "--init-from", model.toString(), "--data", shard.toString(),
                "--batch-size", Integer.toString(B), "--seq-len", Integer.toString(T), "--steps", Integer.toString(STEPS),
                "--lr", Float.toString(LR), "--lr-schedule", "constant", "--warmup-steps", "0", "--grad-clip", "0",
                "--weight-decay", Float.toString(WEIGHT_DECAY), "--beta1", Float.toString(BETA1),
                "--beta2", Float.toString(BETA2), "--eps", Float.toString(EPS), "--eval-every", "0",
                "--save-every", "0", "--save-dir", dir.resolve("run").toString(), "--metrics-out", metrics.toString());
        List<JsonNode> lines = Cli.metrics(metrics);
        assertEquals(STEPS, lines.size());

        double[] expected = referenceLosses(HfModelFiles.load(model).params(), tokens);
        assertTrue(expected[STEPS - 1] < expected[0] - 0.01, "the reference should learn something");
        for (int k = 0; k < STEPS; k++) {
            JsonNode line = lines.get(k);
            assertEquals(k + 1, line.get("step").asInt());
            assertEquals(LR, line.get("lr").asDouble(), 0.0, "constant learning rate");
            double loss = line.get("loss").asDouble();
            assertEquals(expected[k], loss, 1e-4 * expected[k], "loss of step " + (k + 1));
        }
    }

    /** The loss of each step of a float64 training run from {@code initial}. */
    private static double[] referenceLosses(float[] initial, int[] tokens) {
        ReferenceGpt64 reference = new ReferenceGpt64(CONFIG);
        ParameterLayout layout = ParameterLayout.of(CONFIG);
        double[] p = ReferenceGpt64.toDouble(initial);
        double[] m = new double[p.length];
        double[] v = new double[p.length];
        // torch.optim.AdamW with nanoGPT's groups: decay for tensors of two or more dimensions only.
        boolean[] decay = new boolean[p.length];
        for (ParameterLayout.Tensor t : layout.tensors()) {
            if (t.shape().length >= 2) {
                for (long i = t.offset(); i < t.offset() + t.size(); i++) {
                    decay[(int) i] = true;
                }
            }
        }
        double lr = LR, beta1 = BETA1, beta2 = BETA2, eps = EPS, wd = WEIGHT_DECAY;
        double[] losses = new double[STEPS];
        int[] inputs = new int[B * T];
        int[] targets = new int[B * T];
        for (int k = 0; k < STEPS; k++) {
            // The data-order contract for rank 0 of 1: step k reads B·T+1 tokens from k·B·T.
            int start = k * B * T;
            System.arraycopy(tokens, start, inputs, 0, B * T);
            System.arraycopy(tokens, start + 1, targets, 0, B * T);
            ReferenceGpt64.Result r = reference.lossAndGradient(p, inputs, targets, B, T);
            losses[k] = r.loss();
            double[] g = r.gradient();
            int step = k + 1;
            double biasCorrection1 = 1 - Math.pow(beta1, step);
            double biasCorrection2 = 1 - Math.pow(beta2, step);
            for (int i = 0; i < p.length; i++) {
                if (decay[i]) {
                    p[i] *= 1 - lr * wd;
                }
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
                double denom = Math.sqrt(v[i]) / Math.sqrt(biasCorrection2) + eps;
                p[i] -= lr / biasCorrection1 * m[i] / denom;
            }
        }
        return losses;
    }
}
