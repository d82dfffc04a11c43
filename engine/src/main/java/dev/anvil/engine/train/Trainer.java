package dev.anvil.engine.train;

import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.LearningRateSchedule;
import dev.anvil.engine.optim.Optimizer;
import dev.anvil.engine.parallel.DataParallel;
import dev.anvil.engine.parallel.GradientReduction;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * The training loop: micro-batches with gradient accumulation, gradient clipping, AdamW, periodic
 * evaluation and checkpoints, a live progress line, and a clean stop on request (SIGTERM/SIGINT)
 * after the current step.
 *
 * <p>Micro-step {@code k} of optimizer step {@code s} (0-based) reads batch index
 * {@code s·gradAccum + k}, so the data position follows from the step alone.
 *
 * <p>Data-parallel: each rank computes its own batches; the last micro-batch's backward pass
 * averages the gradients across ranks in overlapping buckets ({@link GradientReduction}), so every
 * rank makes the same update (or, with a sharded optimizer, its shard of it). The ranks agree on the
 * mean loss and on stopping after each step, so a signal that reaches one rank stops all of them at
 * the same step. Only the leader should be given metrics and progress, and checkpoints unless every
 * rank writes a part of them (sharded optimizer state).
 */
public final class Trainer {

    /** Saves a checkpoint after {@code completedSteps} steps and returns where. */
    @FunctionalInterface
    public interface CheckpointWriter {
        Path save(int completedSteps) throws IOException;
    }

    /**
     * How a run ended.
     *
     * @param completedSteps steps completed in total (resumed ones included)
     * @param lastLoss       loss of the last step run
     * @param stopReason     the signal that stopped the run early, or {@code null} if it finished
     * @param lastCheckpoint the last checkpoint written by this run, or {@code null}
     */
    public record Result(int completedSteps, float lastLoss, String stopReason, Path lastCheckpoint) {
    }

    private final GptModel model;
    private final Optimizer optimizer;
    private final TrainConfig config;
    private DataParallel group = DataParallel.single();
    private GradientReduction sync;
    private Batches validation;
    private int evalEvery;
    private int valBatches = 20;
    private CheckpointWriter checkpoints;
    private int saveEvery;
    private Consumer<StepMetrics> listener = m -> { };
    private ProgressLine progress;
    private StopSignal stop = StopSignal.none();

    public Trainer(GptModel model, Optimizer optimizer, TrainConfig config) {
        this.model = Objects.requireNonNull(model);
        this.optimizer = Objects.requireNonNull(optimizer);
        this.config = Objects.requireNonNull(config);
    }

    /** Trains as one rank of {@code group}, averaging gradients through {@code sync}. */
    public Trainer dataParallel(DataParallel group, GradientReduction sync) {
        this.group = Objects.requireNonNull(group);
        this.sync = Objects.requireNonNull(sync);
        return this;
    }

    /** Evaluates {@code batches} validation batches on {@code source} every {@code every} steps (0 = never). */
    public Trainer validation(Batches source, int every, int batches) {
        this.validation = source;
        this.evalEvery = every;
        this.valBatches = batches;
        return this;
    }

    /** Saves a checkpoint every {@code every} steps (0 = only at the end and on a stop request). */
    public Trainer checkpoints(CheckpointWriter writer, int every) {
        this.checkpoints = writer;
        this.saveEvery = every;
        return this;
    }

    /** Adds a receiver of every step's metrics (e.g. a {@link MetricsLog}). */
    public Trainer onStep(Consumer<StepMetrics> listener) {
        this.listener = this.listener.andThen(Objects.requireNonNull(listener));
        return this;
    }

    /** Shows progress on this line; none by default. */
    public Trainer progress(ProgressLine line) {
        this.progress = line;
        return this;
    }

    /** Stops cleanly after the current step once {@code stop} is requested. */
    public Trainer stopOn(StopSignal stop) {
        this.stop = Objects.requireNonNull(stop);
        return this;
    }

    /**
     * Runs steps {@code startStep} (0-based: the number already completed) to
     * {@link TrainConfig#steps()}.
     *
     * @throws TrainingDivergedException if a loss or gradient norm is not finite; no checkpoint is
     *                                   written for that step, so the last good one stays
     */
    public Result run(Batches train, int startStep) {
        int b = config.batchSize(), t = config.seqLen(), accum = config.gradAccum();
        int[] inputs = new int[b * t];
        int[] targets = new int[b * t];
        LearningRateSchedule lrs = config.learningRates();
        long tokensPerStep = config.tokensPerStep() * group.worldSize();
        long runStart = System.nanoTime();
        double timedSeconds = 0;
        int timedSteps = 0;
        float loss = Float.NaN;
        Path lastCheckpoint = null;
        int step = startStep;
        while (step < config.steps()) {
            long stepStart = System.nanoTime();
            model.zeroGradients();
            double lossSum = 0;
            for (int k = 0; k < accum; k++) {
                train.fill((long) step * accum + k, inputs, targets);
                model.forwardStep(inputs, targets, b, t, 1f / accum);
                if (k == accum - 1 && sync != null) {
                    model.backward(sync);
                    sync.finish();
                } else {
                    model.backward();
                }
            }
            // Queued behind the backward pass: for a whole-buffer AdamW the norm, the clip factor and the
            // update all stay on the device (a diverged step's update is skipped there), and the host
            // waits only below, at the end of the step.
            float lr = lrs.at(step);
            CompletableFuture<Float> stepNorm = optimizer.stepClipped(model, lr);
            for (float microLoss : model.takeLosses()) {
                lossSum += microLoss;
            }
            float[] agreed = group.agree((float) (lossSum / accum), stop.requested());
            loss = agreed[0] / group.worldSize();
            boolean stopping = agreed[1] > 0;
            float norm = stepNorm.join();
            if (!Float.isFinite(loss) || !Float.isFinite(norm)) {
                throw new TrainingDivergedException(step + 1, String.format(Locale.ROOT,
                        "step %d: loss %s, gradient norm %s: training diverged and stopped before updating the "
                                + "weights; try a lower --lr, --grad-clip 1.0 or a longer --warmup-steps",
                        step + 1, loss, norm));
            }
            step++;
            double stepSeconds = (System.nanoTime() - stepStart) / 1e9;
            if (step > startStep + 1) { // the first step warms up the JIT: leave it out of the ETA
                timedSeconds += stepSeconds;
                timedSteps++;
            }
            Double valLoss = evalEvery > 0 && validation != null && (step % evalEvery == 0 || step == config.steps())
                    ? (double) evaluate() : null;
            StepMetrics metrics = new StepMetrics(step, loss, lr, norm, tokensPerStep / stepSeconds,
                    (System.nanoTime() - runStart) / 1e9, valLoss);
            listener.accept(metrics);
            showProgress(metrics, timedSteps == 0 ? Double.NaN : timedSeconds / timedSteps);
            if (checkpoints != null && (stopping || step == config.steps() || (saveEvery > 0 && step % saveEvery == 0))) {
                lastCheckpoint = save(step);
            }
            if (stopping) {
                break;
            }
        }
        if (progress != null) {
            progress.finish();
        }
        String reason = step < config.steps() ? (stop.reason() != null ? stop.reason() : "another rank's stop") : null;
        return new Result(step, loss, reason, lastCheckpoint);
    }

    /** Mean loss over the validation batches, which the ranks share out between them. */
    public float evaluate() {
        int b = config.batchSize(), t = config.seqLen();
        int[] inputs = new int[b * t];
        int[] targets = new int[b * t];
        double sum = 0;
        for (int i = group.rank(); i < valBatches; i += group.worldSize()) {
            validation.fill(i, inputs, targets);
            sum += model.evaluate(inputs, targets, b, t);
        }
        return group.agree((float) sum, false)[0] / valBatches;
    }

    private Path save(int step) {
        try {
            Path path = checkpoints.save(step);
            if (progress != null) {
                progress.println("checkpoint " + path);
            }
            return path;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot save the checkpoint of step " + step + ": " + e.getMessage(), e);
        }
    }

    private void showProgress(StepMetrics m, double secondsPerStep) {
        if (progress == null) {
            return;
        }
        int remaining = config.steps() - m.step();
        String val = m.valLoss() == null ? "" : String.format(Locale.ROOT, " | val %.4f", m.valLoss());
        String text = String.format(Locale.ROOT, "step %d/%d | loss %.4f%s | lr %.2e | norm %.3f | %,.0f tok/s | ETA %s",
                m.step(), config.steps(), m.loss(), val, m.lr(), m.gradNorm(), m.tokensPerS(),
                ProgressLine.duration(remaining * secondsPerStep));
        if (m.valLoss() != null) {
            progress.println(text); // evaluations stay on screen as a log of the run
        } else {
            progress.update(text, remaining == 0);
        }
    }
}
