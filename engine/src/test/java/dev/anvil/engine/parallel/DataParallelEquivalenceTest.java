package dev.anvil.engine.parallel;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.CommunicatorOptions;
import dev.anvil.collective.DataTransport;
import dev.anvil.collective.LocalCluster;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.data.TokenSource;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.train.StepMetrics;
import dev.anvil.engine.train.TrainConfig;
import dev.anvil.engine.train.Trainer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * R ranks with batch B each must train like one rank with batch R·B, step by step: the same loss and gradient
 * norm at every step (with clipping off, which would otherwise hide a gradient scaled by R: a sum instead of a
 * mean), and the same weights at the end. Gradient accumulation over k micro-batches must be a batch k times
 * as big, alone and across ranks.
 */
class DataParallelEquivalenceTest {

    private static final GptConfig MODEL = GptConfig.preset("tiny");
    private static final int B = 2;
    private static final int T = 32;
    private static final int STEPS = 10;
    private static final TokenSource DATA = tokens();
    /**
     * Per-step loss and gradient norm agree to this relative difference: measured at most 1.2e-7 over the ten
     * steps (one fp32 rounding: the summation order differs), while a gradient summed instead of averaged over
     * R ranks is R times the norm.
     */
    private static final double STEP_RTOL = 1e-5;
    /** Runs already made, by description: the single-rank runs serve several comparisons. */
    private static final Map<String, Run> RUNS = new ConcurrentHashMap<>();

    /** What a run produced: rank 0's final (master) weights and its per-step metrics. */
    private record Run(float[] weights, List<StepMetrics> steps) {
    }

    private static TokenSource tokens() {
        Random random = new Random(17);
        int[] ids = new int[40_000];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(MODEL.vocabSize());
        }
        return TokenSource.ofTokens("random", ids);
    }

    /** Clipping off (0) unless {@code clip} is given; see the class comment. */
    private static TrainConfig config(int batch, int accum, float clip) {
        return new TrainConfig(batch, T, accum, STEPS, 1e-3f, "cosine", 2, 1e-4f,
                new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, clip), 5);
    }

    /** Trains one rank and returns its final (master) weights and per-step metrics. */
    private static Run train(TrainConfig config, int rank, int worldSize, Communicator comm, DType dtype) {
        try (CpuBackend backend = new CpuBackend(1); GptModel model = new GptModel(backend, MODEL, dtype);
             AdamW adamw = new AdamW(backend, model.layout(), config.adamw())) {
            model.initialize(5);
            List<StepMetrics> steps = new ArrayList<>();
            Trainer trainer = new Trainer(model, adamw, config).onStep(steps::add);
            GradientSync sync = null;
            if (comm != null) {
                // Small buckets, so the test exercises several overlapping all-reduces per step.
                sync = new GradientSync(comm, backend, model.gradients(), 64 * 1024);
                trainer.dataParallel(new DataParallel(comm), sync);
            }
            DataLoader loader = new DataLoader(DATA, config.batchSize(), T, rank, worldSize);
            trainer.run(loader::load, 0);
            if (sync != null) {
                sync.close();
            }
            return new Run(model.readParameters(), steps);
        }
    }

    /** One rank with micro-batches of {@code batch}, {@code accum} of them per step, clipping off. */
    private static Run single(int batch, int accum, DType dtype) {
        return RUNS.computeIfAbsent("single B=" + batch + " accum=" + accum + " " + dtype,
                k -> train(config(batch, accum, 0f), 0, 1, null, dtype));
    }

    /**
     * Trains {@code ranks} ranks of batch B together, {@code accum} micro-batches per step, clipping off, over
     * {@code transport}; checks that they agree exactly and returns rank 0's run.
     */
    private static Run ranks(int ranks, int accum, DType dtype, DataTransport transport) throws Exception {
        List<Run> results = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(ranks);
        try (LocalCluster cluster = LocalCluster.start(ranks,
                CommunicatorOptions.defaults(JobToken.random()).withDataTransport(transport))) {
            List<Future<Run>> futures = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                int rank = r;
                futures.add(pool.submit(() -> train(config(B, accum, 0f), rank, ranks, cluster.rank(rank), dtype)));
            }
            for (Future<Run> f : futures) {
                results.add(f.get(5, TimeUnit.MINUTES));
            }
        } finally {
            pool.shutdownNow();
        }
        for (int r = 1; r < ranks; r++) {
            assertArrayEquals(results.get(0).weights(), results.get(r).weights(), "every rank ends with identical weights");
            assertEquals(results.get(0).steps().stream().map(StepMetrics::loss).toList(),
                    results.get(r).steps().stream().map(StepMetrics::loss).toList(), "every rank reports the same losses");
        }
        return results.get(0);
    }

    /**
     * BF16 gradients are all-reduced as BFLOAT16 (staged through host memory, as on a GPU): the
     * ranks still agree exactly, and land near the one-rank bf16 run. Not as near as in fp32: each
     * rank's gradient, and their mean, are rounded to bf16, where one rank rounds one sum. Measured
     * after 10 steps: 1.3e-3 relative difference of the weight vectors (1.2e-3 with clipping on, when
     * the one-rank bf16 and fp32 runs differed by 1.7e-3), so it is bf16's own noise.
     */
    @Test
    void bf16RanksAgreeExactlyAndNearlyMatchOneRank() throws Exception {
        float[] single = single(2 * B, 1, DType.BF16).weights();
        float[] parallel = ranks(2, 1, DType.BF16, DataTransport.AUTO).weights();
        double diffSq = 0, normSq = 0;
        for (int i = 0; i < single.length; i++) {
            double diff = parallel[i] - single[i];
            diffSq += diff * diff;
            normSq += (double) single[i] * single[i];
        }
        assertTrue(Math.sqrt(diffSq / normSq) <= 3e-3, "relative difference of the weight vectors "
                + Math.sqrt(diffSq / normSq) + " exceeds 3e-3");
    }

    /** Over TCP and over shared memory alike: the transports move the same bits (see ChannelsTest). */
    @ParameterizedTest(name = "{0} ranks over {1}")
    @CsvSource({"2, TCP", "2, SHM", "4, TCP", "4, SHM"})
    void ranksWithBatchBTrainStepByStepLikeOneRankWithBatchRTimesB(int ranks, DataTransport transport)
            throws Exception {
        Run single = single(ranks * B, 1, DType.FP32);
        Run parallel = ranks(ranks, 1, DType.FP32, transport);
        assertSameSteps(single, parallel);
        assertSameWeights(single.weights(), parallel.weights());
    }

    /** k micro-batches of B accumulated, on one rank or on each of R ranks, train like one batch of R·k·B. */
    @ParameterizedTest(name = "{0} rank(s)")
    @ValueSource(ints = {1, 2})
    void twoAccumulatedMicroBatchesTrainLikeOneBatchTwiceAsBig(int ranks) throws Exception {
        Run big = single(2 * ranks * B, 1, DType.FP32);
        Run accumulated = ranks == 1 ? single(B, 2, DType.FP32) : ranks(ranks, 2, DType.FP32, DataTransport.AUTO);
        assertSameSteps(big, accumulated);
        assertSameWeights(big.weights(), accumulated.weights());
    }

    private static void assertSameSteps(Run expected, Run actual) {
        assertEquals(STEPS, expected.steps().size());
        assertEquals(STEPS, actual.steps().size());
        for (int i = 0; i < STEPS; i++) {
            StepMetrics e = expected.steps().get(i);
            StepMetrics a = actual.steps().get(i);
            assertEquals(e.lr(), a.lr(), "step " + (i + 1) + " learning rate");
            assertEquals(e.loss(), a.loss(), STEP_RTOL * Math.abs(e.loss()), "step " + (i + 1) + " loss");
            assertEquals(e.gradNorm(), a.gradNorm(), STEP_RTOL * e.gradNorm(), "step " + (i + 1) + " gradient norm");
        }
    }

    private static void assertSameWeights(float[] single, float[] parallel) {
        // torch.testing.assert_close's form, |a - b| <= rtol·|b| + atol, with rtol = 1e-5 and atol = 1e-5
        // of the largest weight. The absolute term is needed: some directions have an exactly zero
        // gradient (the key biases: softmax ignores a shift shared by a row), so their gradient is
        // rounding noise that differs with the summation order, and Adam turns noise into small steps.
        float maxAbs = 0;
        for (float p : single) {
            maxAbs = Math.max(maxAbs, Math.abs(p));
        }
        double worst = 0;
        int at = 0;
        double diffSq = 0, normSq = 0;
        for (int i = 0; i < single.length; i++) {
            double diff = Math.abs(parallel[i] - single[i]);
            double err = diff / (1e-5 * Math.abs(single[i]) + 1e-5 * maxAbs);
            diffSq += diff * diff;
            normSq += (double) single[i] * single[i];
            if (err > worst) {
                worst = err;
                at = i;
            }
        }
        String where = "";
        for (var t : dev.anvil.engine.model.ParameterLayout.of(MODEL).tensors()) {
            if (at >= t.offset() && at < t.offset() + t.size()) {
                where = t.name() + "[" + (at - t.offset()) + "]";
            }
        }
        assertTrue(worst <= 1, "weights differ beyond 1e-5 at " + where + ": " + parallel[at] + " vs " + single[at]);
        assertTrue(Math.sqrt(diffSq / normSq) <= 1e-5, "relative difference of the weight vectors "
                + Math.sqrt(diffSq / normSq) + " exceeds 1e-5");
    }
}
