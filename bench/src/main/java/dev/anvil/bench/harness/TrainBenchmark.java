package dev.anvil.bench.harness;

import dev.anvil.collective.Communicator;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.model.Recompute;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.optim.Optimizer;
import dev.anvil.engine.parallel.GradientReduction;
import dev.anvil.engine.train.OptimizerSetup;
import dev.anvil.engine.train.ProgressLine;
import dev.anvil.engine.train.RankMemory;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.DType;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

/**
 * Runs real training steps (forward, backward, gradient clipping, AdamW) on random tokens and
 * times each step's {@link Phase}s; as one rank of a data-parallel group when given one, with the
 * gradients all-reduced, or with ZeRO-1 the optimizer state sharded, as {@code train} does.
 */
final class TrainBenchmark {

    /** GPT-2's AdamW settings; the values do not change the step's cost. */
    private static final AdamWConfig ADAMW = new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1.0f);
    private static final float LR = 3e-4f;

    /**
     * What to run.
     *
     * @param model     the model's shape
     * @param batchSize sequences per step
     * @param seqLen    tokens per sequence
     * @param steps     measured steps
     * @param warmup    steps run first and not measured (JIT compilation, allocation)
     * @param seed      of the weights and the tokens
     * @param zero      whether to shard the optimizer state across the ranks (ZeRO-1)
     * @param recompute which activations the backward pass recomputes
     */
    record Settings(GptConfig model, DType dtype, int batchSize, int seqLen, int steps, int warmup, long seed,
                    boolean zero, Recompute recompute) {
        Settings {
            if (batchSize <= 0 || seqLen <= 0 || steps <= 0 || warmup < 0) {
                throw new IllegalArgumentException(String.format(Locale.ROOT,
                        "need --batch-size, --seq-len and --steps > 0 and --warmup >= 0, got %d, %d, %d and %d",
                        batchSize, seqLen, steps, warmup));
            }
            if (seqLen > model.maxSeqLen()) {
                throw new IllegalArgumentException("--seq-len " + seqLen + " exceeds the model's context of "
                        + model.maxSeqLen() + " tokens");
            }
        }
    }

    /**
     * What the measured steps took.
     *
     * @param stepSeconds wall time of each measured step
     * @param phaseNanos  per measured step, nanoseconds by {@link Phase#ordinal()}
     * @param finalLoss   loss of the last step
     * @param memory      what this rank held for training, by part
     */
    record Measurement(double[] stepSeconds, long[][] phaseNanos, float finalLoss, RankMemory memory) {
    }

    private TrainBenchmark() {
    }

    /**
     * Runs {@code warmup + steps} steps on {@code backend}, sampling {@code memory} as it goes.
     *
     * @param comm the data-parallel group, or {@code null} for one rank
     */
    static Measurement run(Backend backend, Settings s, Communicator comm, MemoryProbe memory, ProgressLine progress) {
        int b = s.batchSize(), t = s.seqLen(), vocab = s.model().vocabSize();
        int[] inputs = new int[b * t];
        int[] targets = new int[b * t];
        SplittableRandom tokens = new SplittableRandom(s.seed() + (comm == null ? 0 : comm.rank()));
        double[] stepSeconds = new double[s.steps()];
        long[][] phaseNanos = new long[s.steps()][];
        float loss = Float.NaN;
        PhaseClock clock = new PhaseClock(backend::synchronize);
        boolean sharded = s.zero() && comm != null;
        RankMemory held;
        try (GptModel model = new GptModel(backend, s.model(), s.dtype(), !sharded);
             OptimizerSetup setup = new OptimizerSetup(backend, model, ADAMW, comm, sharded)) {
            Optimizer optimizer = setup.optimizer();
            GradientReduction sync = setup.sync();
            long init = System.nanoTime();
            setup.initialize(s.seed());
            model.recompute(s.recompute());
            progress.println(String.format(Locale.ROOT, "weights initialised in %.1f s", (System.nanoTime() - init) / 1e9));
            model.zeroGradients();
            for (int i = 0; i < s.warmup() + s.steps(); i++) {
                if (i == s.warmup()) {
                    memory.reset(); // measure the steady state, not the warmup's allocations
                }
                clock.start();
                for (int k = 0; k < inputs.length; k++) {
                    inputs[k] = tokens.nextInt(vocab);
                    targets[k] = tokens.nextInt(vocab);
                }
                clock.lap(Phase.DATA);
                model.forwardTrunk(inputs, b, t);
                clock.lap(Phase.FORWARD);
                model.lmHeadStep(targets, 1f);  // the loss comes back behind the pass
                clock.lap(Phase.LM_HEAD);
                memory.sample(); // activations are all live here
                if (sync != null) {
                    model.backward(sync);
                    clock.lap(Phase.BACKWARD);
                    sync.finish();
                    clock.lap(Phase.COMMUNICATION);
                } else {
                    model.backward();
                    clock.lap(Phase.BACKWARD);
                }
                // As the trainer does: norm, clip and update queued (on the device for a whole-buffer AdamW)
                CompletableFuture<Float> norm = optimizer.stepClipped(model, LR);
                model.zeroGradients();
                loss = model.takeLosses()[0];
                norm.join();
                clock.lap(Phase.OPTIMIZER);
                memory.sample();
                long[] phases = clock.phases();
                double seconds = Arrays.stream(phases).sum() / 1e9;
                int measured = i - s.warmup();
                if (measured >= 0) {
                    stepSeconds[measured] = seconds;
                    phaseNanos[measured] = phases;
                }
                progress.update(String.format(Locale.ROOT, "%s %d/%d: %.1f ms, loss %.3f",
                        measured < 0 ? "warmup step" : "step", measured < 0 ? i + 1 : measured + 1,
                        measured < 0 ? s.warmup() : s.steps(), seconds * 1e3, loss), false);
            }
            held = RankMemory.of(model, optimizer);
        }
        progress.finish();
        return new Measurement(stepSeconds, phaseNanos, loss, held);
    }
}
