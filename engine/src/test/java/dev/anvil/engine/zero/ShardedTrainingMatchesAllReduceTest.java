package dev.anvil.engine.zero;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.LocalCluster;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.data.TokenSource;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.optim.Optimizer;
import dev.anvil.engine.parallel.DataParallel;
import dev.anvil.engine.parallel.GradientBuckets;
import dev.anvil.engine.parallel.GradientReduction;
import dev.anvil.engine.parallel.GradientSync;
import dev.anvil.engine.train.StepMetrics;
import dev.anvil.engine.train.TrainConfig;
import dev.anvil.engine.train.Trainer;
import dev.anvil.kernels.BFloat16;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ZeRO-1 against all-reduce data parallelism at the same world size: the reduce-scatter sums every
 * gradient element in the all-reduce's order and each rank's update is AdamW's own arithmetic, so the
 * weights, and hence the losses, are the same bits whenever the clip factor is. The gradient norm is
 * summed in another order (per bucket shard, then across ranks, against one pass over the buffer),
 * so it may differ in the last bit; when clipping acts, that bit reaches the clip factor and the
 * weights, which then agree to rounding (1e-6 relative).
 */
class ShardedTrainingMatchesAllReduceTest {

    private static final GptConfig MODEL = GptConfig.preset("tiny");
    private static final int B = 2;
    private static final int T = 32;
    private static final int STEPS = 5;
    /** Small buckets, so several reduce-scatters overlap each backward pass. */
    private static final long BUCKET_BYTES = 16 * 1024;
    private static final TokenSource DATA = tokens();

    private static TokenSource tokens() {
        Random random = new Random(23);
        int[] ids = new int[20_000];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(MODEL.vocabSize());
        }
        return TokenSource.ofTokens("random", ids);
    }

    /** What one rank saw: each step's loss and gradient norm, and its final weights. */
    private record Run(float[] losses, float[] norms, float[] weights) {
    }

    private static TrainConfig config(float clip) {
        return new TrainConfig(B, T, 1, STEPS, 3e-3f, "cosine", 2, 1e-4f,
                new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, clip), 5);
    }

    private static Run train(int rank, Communicator comm, boolean zero, DType dtype, float clip) {
        TrainConfig config = config(clip);
        try (CpuBackend backend = new CpuBackend(1);
             GptModel model = new GptModel(backend, MODEL, dtype, !zero)) {
            model.initialize(5);
            GradientReduction sync;
            Optimizer optimizer;
            AutoCloseable[] owned;
            if (zero) {
                ShardPlan plan = new ShardPlan(GradientBuckets.of(model.layout(), BUCKET_BYTES, dtype.bytes()),
                        rank, comm.worldSize());
                ShardedGradientSync sharded = new ShardedGradientSync(comm, backend, plan, model.gradients(),
                        model.parameters());
                ShardedOptimizer opt = new ShardedOptimizer(backend, model, config.adamw(), sharded);
                opt.importMaster(plan.shard().gather(model.readParameters()));
                sync = sharded;
                optimizer = opt;
                owned = new AutoCloseable[] {opt, sharded};
            } else {
                GradientSync all = new GradientSync(comm, backend, model.gradients(), BUCKET_BYTES);
                AdamW adamw = new AdamW(backend, model.layout(), config.adamw());
                sync = all;
                optimizer = adamw;
                owned = new AutoCloseable[] {adamw, all};
            }
            if (dtype == DType.BF16 && zero) {
                // The sharded optimizer's master weights start from the same fp32 weights as the model's would.
                GptModel reference = new GptModel(backend, MODEL, dtype);
                reference.initialize(5);
                ((ShardedOptimizer) optimizer).importMaster(
                        ((ShardedGradientSync) sync).plan().shard().gather(reference.readParameters()));
                reference.close();
            }
            List<StepMetrics> steps = new ArrayList<>();
            new Trainer(model, optimizer, config).dataParallel(new DataParallel(comm), sync).onStep(steps::add)
                    .run(new DataLoader(DATA, B, T, rank, comm.worldSize())::load, 0);
            float[] losses = new float[STEPS];
            float[] norms = new float[STEPS];
            for (int i = 0; i < STEPS; i++) {
                losses[i] = (float) steps.get(i).loss();
                norms[i] = (float) steps.get(i).gradNorm();
            }
            float[] weights = model.readParameters();
            if (dtype == DType.BF16) {
                // The weights computed with: the master weights' rounding where the model keeps them.
                for (int i = 0; i < weights.length; i++) {
                    weights[i] = BFloat16.toFloat(BFloat16.fromFloat(weights[i]));
                }
            }
            for (AutoCloseable c : owned) {
                c.close();
            }
            return new Run(losses, norms, weights);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Trains every rank in a thread of its own; checks they agree and returns rank 0's run. */
    private static Run trainRanks(int ranks, boolean zero, DType dtype, float clip) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(ranks);
        List<Run> runs = new ArrayList<>();
        try (LocalCluster cluster = LocalCluster.start(ranks)) {
            List<Future<Run>> futures = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                int rank = r;
                futures.add(pool.submit(() -> train(rank, cluster.rank(rank), zero, dtype, clip)));
            }
            for (Future<Run> f : futures) {
                runs.add(f.get(5, TimeUnit.MINUTES));
            }
        } finally {
            pool.shutdownNow();
        }
        for (int r = 1; r < ranks; r++) {
            assertArrayEquals(runs.get(0).weights(), runs.get(r).weights(), "rank " + r + " ends with rank 0's weights");
            assertArrayEquals(runs.get(0).norms(), runs.get(r).norms(), "rank " + r + " sees rank 0's gradient norms");
        }
        return runs.get(0);
    }

    @ParameterizedTest(name = "{0} ranks, {1}, clip {2}")
    @CsvSource({"2, FP32, 0", "4, FP32, 0", "4, FP32, 0.5", "2, BF16, 0"})
    void zeroOneTrainsLikeAllReduceDataParallel(int ranks, DType dtype, float clip) throws Exception {
        Run allReduce = trainRanks(ranks, false, dtype, clip);
        Run sharded = trainRanks(ranks, true, dtype, clip);
        for (int i = 0; i < STEPS; i++) {
            assertEquals(allReduce.norms()[i], sharded.norms()[i], 1e-6 * allReduce.norms()[i],
                    "gradient norm of step " + (i + 1));
            if (clip > 0) {
                assertTrue(allReduce.norms()[i] > clip, "clipping acts at step " + (i + 1) + ": norm "
                        + allReduce.norms()[i]);
                assertEquals(allReduce.losses()[i], sharded.losses()[i], 1e-6 * allReduce.losses()[i],
                        "loss of step " + (i + 1));
            }
        }
        if (clip == 0) {
            assertArrayEquals(allReduce.losses(), sharded.losses(), "the same losses, bit for bit");
            assertArrayEquals(allReduce.weights(), sharded.weights(), "the same weights, bit for bit");
        }
    }
}
