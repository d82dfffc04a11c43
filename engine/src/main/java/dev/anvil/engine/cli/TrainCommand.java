package dev.anvil.engine.cli;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.engine.checkpoint.BackgroundCheckpoints;
import dev.anvil.engine.checkpoint.CheckpointException;
import dev.anvil.engine.checkpoint.Checkpointer;
import dev.anvil.engine.checkpoint.RunManifest;
import dev.anvil.engine.checkpoint.ShardedCheckpoints;
import dev.anvil.engine.checkpoint.TrainingState;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.data.Tokenizer;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.ModelWeights;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.metrics.PrometheusMetrics;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.parallel.DataParallel;
import dev.anvil.engine.sample.Sampler;
import dev.anvil.engine.sample.TextGenerator;
import dev.anvil.engine.train.MetricsLog;
import dev.anvil.engine.train.OptimizerSetup;
import dev.anvil.engine.train.ProgressLine;
import dev.anvil.engine.train.RankMemory;
import dev.anvil.engine.train.StopSignal;
import dev.anvil.engine.train.TrainConfig;
import dev.anvil.engine.train.Trainer;
import dev.anvil.engine.train.TrainingDivergedException;
import dev.anvil.kernels.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;

/** {@code anvil train}: trains a model, with checkpoints, exact resume and a clean stop on SIGTERM. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a GPT-2 style model.",
                "Without --data it trains the mini preset on the embedded Europarl corpus and ends with a sample"
                        + " of its text."})
public final class TrainCommand implements Callable<Integer> {

    /** The model trained when neither --preset nor --init-from is given. */
    static final String DEFAULT_PRESET = "mini";

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", description = "Model shape: ${COMPLETION-CANDIDATES} (default: mini, or the shape of --init-from)",
            completionCandidates = Presets.class)
    String preset;

    @Option(names = "--init-from", paramLabel = "DIR", description = "Start from the weights in DIR (config.json + model.safetensors)")
    Path initFrom;

    @Mixin
    DataOptions data;

    @Option(names = "--batch-size", defaultValue = "8", description = "Sequences per micro-batch (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--seq-len", description = "Tokens per sequence (default: the model's context length)")
    Integer seqLen;

    @Option(names = "--grad-accum", defaultValue = "1", description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE})")
    int gradAccum;

    @Option(names = "--steps", defaultValue = "1000", description = "Optimizer steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--lr", description = "Peak learning rate (default: 3e-3 for models up to 256 channels wide,"
            + " such as tiny and mini; 1e-3 for wider ones)")
    Float lr;

    @Option(names = "--lr-schedule", defaultValue = "cosine", description = "constant or cosine (default: ${DEFAULT-VALUE})")
    String lrSchedule;

    @Option(names = "--warmup-steps", description = "Linear warmup steps (default: 5% of --steps)")
    Integer warmupSteps;

    @Option(names = "--min-lr", defaultValue = "1e-4", description = "Floor of the cosine decay (default: ${DEFAULT-VALUE})")
    float minLr;

    @Option(names = "--weight-decay", defaultValue = "0.1", description = "AdamW weight decay on 2-D tensors (default: ${DEFAULT-VALUE})")
    float weightDecay;

    @Option(names = "--beta1", defaultValue = "0.9", description = "AdamW beta1 (default: ${DEFAULT-VALUE})")
    float beta1;

    @Option(names = "--beta2", defaultValue = "0.95", description = "AdamW beta2 (default: ${DEFAULT-VALUE})")
    float beta2;

    @Option(names = "--eps", defaultValue = "1e-8", description = "AdamW epsilon (default: ${DEFAULT-VALUE})")
    float eps;

    @Option(names = "--grad-clip", defaultValue = "1.0", description = "Clip the global gradient norm; 0 = off (default: ${DEFAULT-VALUE})")
    float gradClip;

    @Option(names = "--seed", defaultValue = "1337", description = "Initialisation seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Mixin
    BackendOptions compute;

    @Mixin
    DistributedOptions distributed;

    @Option(names = "--zero", defaultValue = "0", paramLabel = "STAGE", description = {
            "ZeRO stage: 0 = every rank keeps the whole optimizer state; 1 = shard the optimizer state (AdamW "
                    + "moments, and fp32 master weights in bf16) across the data-parallel ranks, 1/R each, for the "
                    + "same traffic (default: ${DEFAULT-VALUE})"})
    int zero;

    @Option(names = "--save-dir", paramLabel = "DIR", description = "Checkpoint directory (default: runs/<preset>)")
    Path saveDir;

    @Option(names = "--save-every", defaultValue = "500", description = "Save every N steps; 0 = only at the end and on SIGTERM/SIGINT (default: ${DEFAULT-VALUE})")
    int saveEvery;

    @Option(names = "--keep-last", defaultValue = "3", description = "Checkpoints to keep; 0 = all (default: ${DEFAULT-VALUE})")
    int keepLast;

    @Option(names = "--resume", description = "Continue from the newest valid checkpoint in --save-dir")
    boolean resume;

    @Option(names = "--eval-every", defaultValue = "100", description = "Validation loss every N steps; 0 = never (default: ${DEFAULT-VALUE})")
    int evalEvery;

    @Option(names = "--val-batches", defaultValue = "20", description = "Batches per validation (default: ${DEFAULT-VALUE})")
    int valBatches;

    @Option(names = "--metrics-out", paramLabel = "FILE.jsonl",
            description = "Write one JSON line per step; a fresh run starts the file afresh, --resume keeps its lines up to the resumed step")
    Path metricsOut;

    @Option(names = "--sample-tokens", paramLabel = "N",
            description = "At the end, print N tokens sampled from the trained model (default: 300 with the embedded"
                    + " corpus, else 0)")
    Integer sampleTokens;

    @Option(names = "--metrics-port", paramLabel = "PORT",
            description = "Serve Prometheus metrics on http://0.0.0.0:PORT/metrics (0 = any free port; rank 0 only)")
    Integer metricsPort;

    @Override
    public Integer call() throws IOException {
        PrintStream out = System.out;
        Map<String, String> env = System.getenv();
        Optional<ModelWeights> initial = initFrom == null ? Optional.empty() : Optional.of(HfModelFiles.load(initFrom));
        GptConfig model = modelConfig(initial);
        TrainConfig config = new TrainConfig(batchSize, seqLen == null ? model.maxSeqLen() : seqLen, gradAccum, steps,
                lr != null ? lr : defaultLearningRate(model), lrSchedule, warmupSteps != null ? warmupSteps : steps / 20,
                minLr, new AdamWConfig(beta1, beta2, eps, weightDecay, gradClip), seed);
        if (config.seqLen() > model.maxSeqLen()) {
            throw new IllegalArgumentException("--seq-len " + config.seqLen() + " exceeds the model's context of "
                    + model.maxSeqLen() + " tokens");
        }
        if (zero != 0 && zero != 1) {
            throw new IllegalArgumentException("--zero must be 0 or 1 (stages 2 and 3 are not supported), got " + zero);
        }
        Optional<RendezvousConfig> rendezvous = distributed.rendezvous(env);
        int rank = rendezvous.map(RendezvousConfig::rank).orElse(0);
        int worldSize = rendezvous.map(RendezvousConfig::worldSize).orElse(1);
        int localRank = rendezvous.map(RendezvousConfig::localRank).orElse(0);
        boolean leader = rank == 0;
        boolean sharded = zero == 1 && worldSize > 1; // one rank has nothing to shard with
        Checkpointer checkpoints = new Checkpointer(saveDir == null ? Path.of("runs", presetName()) : saveDir, keepLast);
        DataOptions.Resolved sources = data.resolve(model);
        DataLoader train = new DataLoader(sources.train(), config.batchSize(), config.seqLen(), rank, worldSize);
        String fingerprint = "anvil " + Version.current() + "; " + model + "; " + compute.dtype() + "; " + config
                + "; zero " + zero + "; data " + data.describe();
        try (Backend backend = compute.open(localRank);
             GptModel gpt = new GptModel(backend, model, compute.dtype(), !sharded);
             Communicator comm = rendezvous.map(r -> distributed.connect(r, fingerprint, env)).orElse(null);
             OptimizerSetup optimizer = new OptimizerSetup(backend, gpt, config.adamw(), comm, sharded);
             MetricsLog metrics = metricsOut == null || !leader ? null : new MetricsLog(metricsOut);
             PrometheusMetrics prometheus = metricsPort == null || !leader ? null : PrometheusMetrics.start(metricsPort);
             BackgroundCheckpoints writer = new BackgroundCheckpoints(checkpoints);
             ShardedCheckpoints shardWriter = sharded
                     ? new ShardedCheckpoints(checkpoints, comm, optimizer.shards(worldSize)) : null) {
            gpt.recompute(compute.recompute());
            DataParallel group = new DataParallel(comm);
            int start = startingPoint(optimizer, initial, checkpoints, config, worldSize, leader ? out : null);
            if (group.agree(start, false)[0] != (float) start * worldSize) {
                throw new IllegalStateException("the ranks resume from different steps (rank " + rank + " from " + start
                        + "): every rank must see the same --save-dir, e.g. on a shared file system");
            }
            if (leader) {
                out.printf(Locale.ROOT, "anvil train: %s, %,d parameters, %s, %s%s%n", model, model.parameterCount(),
                        backend.description(), compute.dtype().toString().toLowerCase(Locale.ROOT),
                        worldSize > 1 ? ", " + worldSize + " data-parallel ranks"
                                + (sharded ? ", optimizer state sharded (ZeRO-1)" : "") : "");
                out.printf(Locale.ROOT, "data: %s%s%nbatch: B=%d T=%d accum=%d, %,d tokens per step%n",
                        sources.train(), sources.val() == null ? "" : "; validation: " + sources.val(),
                        config.batchSize(), config.seqLen(), config.gradAccum(), config.tokensPerStep() * worldSize);
            }
            if (start >= config.steps()) {
                if (leader) {
                    out.println("nothing to do: the checkpoint has already completed " + start + " of " + config.steps() + " steps");
                }
                if (comm != null) {
                    comm.finish();
                }
                return 0;
            }
            Trainer trainer = new Trainer(gpt, optimizer.optimizer(), config).stopOn(StopSignal.install());
            if (optimizer.sync() != null) {
                trainer.dataParallel(group, optimizer.sync());
            }
            // Hashing big shards takes a while: do it once, when the first checkpoint is written.
            RunManifest[] manifest = new RunManifest[1];
            Trainer.CheckpointWriter save = step -> {
                TrainingState state = new TrainingState(step, (long) step * config.gradAccum(), config.gradAccum(),
                        worldSize, config.seed(), config.batchSize(), config.seqLen());
                if (leader && manifest[0] == null) {
                    manifest[0] = manifest(config, model, sources, backend, worldSize);
                }
                return shardWriter != null ? shardWriter.save(optimizer.shardSnapshot(state, manifest[0]))
                        : writer.submit(optimizer.snapshot(state, manifest[0]));
            };
            if (shardWriter != null) {
                // Every rank writes its shard; the checkpoint is completed once all have.
                trainer.checkpoints(save, saveEvery).onStep(m -> {
                    try {
                        shardWriter.poll();
                    } catch (IOException e) {
                        throw new UncheckedIOException("cannot save the checkpoint: " + e.getMessage(), e);
                    }
                });
            }
            if (leader) {
                ProgressLine progress = new ProgressLine(out, ProgressLine.stdoutIsTerminal(), 5);
                trainer.progress(progress).onStep(m -> {
                    if (m.step() == start + 1) { // activations exist once a step has run
                        progress.println("memory per rank: " + RankMemory.of(gpt, optimizer.optimizer()).describe());
                    }
                });
                if (shardWriter == null) {
                    trainer.checkpoints(save, saveEvery);
                }
                if (metrics != null) {
                    trainer.onStep(metrics::write);
                }
                if (prometheus != null) {
                    trainer.onStep(prometheus);
                    out.println("serving metrics on http://0.0.0.0:" + prometheus.port() + "/metrics");
                }
            }
            if (sources.val() != null) {
                DataLoader val = new DataLoader(sources.val(), config.batchSize(), config.seqLen(), 0, 1);
                trainer.validation(val::load, evalEvery, valBatches);
            }
            Trainer.Result result;
            try {
                result = trainer.run(train::load, start);
            } catch (TrainingDivergedException e) {
                if (shardWriter != null) {
                    shardWriter.finish(); // every rank diverged at the same step: the last good checkpoint completes
                }
                // Every rank stops at this step and says so in one line; the leader names the checkpoint to go back to.
                writer.awaitPending();
                String last = leader ? checkpoints.latestValid(w -> { })
                        .map(p -> "; the last good checkpoint, " + p + ", is untouched").orElse("") : "";
                spec.commandLine().getErr().println("anvil train: error: " + e.getMessage() + last);
                return 1;
            }
            if (shardWriter != null) {
                shardWriter.finish(); // every rank has written its part of the last checkpoint, and it is complete
            }
            if (comm != null) {
                comm.finish(); // every rank finished its last step: none mistakes the others leaving for a lost rank
            }
            writer.awaitPending(); // the report names the last checkpoint: it must be on disk
            if (leader) {
                report(result, out);
                int sample = sampleTokens != null ? sampleTokens : data.embedded() ? 300 : 0;
                if (sample > 0 && result.stopReason() == null) {
                    out.println("sample" + (result.lastCheckpoint() == null ? "" : " (more: bin/anvil generate -c "
                            + result.lastCheckpoint() + ")") + ":");
                    TextGenerator.generate(gpt, Tokenizer.forVocabSize(model.vocabSize()), new Sampler(0.8f, 40, 1),
                            "", sample, out);
                }
            }
            return 0;
        }
    }

    private String presetName() {
        return preset != null ? preset : initFrom != null ? initFrom.getFileName().toString() : DEFAULT_PRESET;
    }

    private GptConfig modelConfig(Optional<ModelWeights> initial) {
        if (initial.isPresent()) {
            GptConfig loaded = initial.get().config();
            if (preset != null && !GptConfig.preset(preset).equals(loaded)) {
                throw new IllegalArgumentException("--init-from " + initFrom + " holds " + loaded
                        + ", not the --preset " + preset + " " + GptConfig.preset(preset) + "; drop --preset or pick the matching one");
            }
            return loaded;
        }
        return GptConfig.preset(preset == null ? DEFAULT_PRESET : preset);
    }

    /**
     * The peak learning rate when --lr is not given. The rate that suits a model falls roughly as it grows wider:
     * narrow models (tiny, mini) learn several times faster at 3e-3 than at GPT-2's 1e-3.
     */
    static float defaultLearningRate(GptConfig model) {
        return model.channels() <= 256 ? 3e-3f : 1e-3f;
    }

    /**
     * Loads the weights to start from and returns the number of steps already done.
     *
     * @param out where to say what happened, or {@code null} on ranks that stay quiet
     */
    private int startingPoint(OptimizerSetup optimizer, Optional<ModelWeights> initial, Checkpointer checkpoints,
                              TrainConfig config, int worldSize, PrintStream out) throws IOException {
        if (resume) {
            Optional<Path> latest = checkpoints.latestValid(w -> say(out, "warning: " + w));
            if (latest.isPresent()) {
                TrainingState state = Checkpointer.readState(latest.get());
                requireSameDataOrder(latest.get(), state, config, worldSize);
                optimizer.restore(latest.get());
                say(out, "resuming from " + latest.get() + " after step " + state.step());
                return state.step();
            }
            if (!checkpoints.list().isEmpty()) {
                throw new CheckpointException(checkpoints.saveDir(), "no valid checkpoint to resume from: every one is "
                        + "corrupt or incomplete (see the warnings); move them away to start again from step 0");
            }
            say(out, "no checkpoint in " + checkpoints.saveDir() + " yet: starting from step 0");
        }
        if (initial.isPresent()) {
            optimizer.load(initial.get().params());
        } else {
            optimizer.initialize(config.seed());
        }
        return 0;
    }

    /**
     * A run may resume on another number of ranks, with another batch size or accumulation, as long
     * as an optimizer step still reads the same tokens: {@code grad-accum × ranks × B × T} of them
     * from the same place (see {@link DataLoader}), so the data order goes on unchanged.
     */
    private static void requireSameDataOrder(Path checkpoint, TrainingState state, TrainConfig config, int worldSize) {
        long tokens = config.tokensPerStep() * worldSize;
        boolean same = state.batchSize() > 0 ? state.globalTokensPerStep() == tokens
                : state.gradAccum() == config.gradAccum() && state.worldSize() == worldSize;
        if (!same) {
            String taken = state.batchSize() > 0
                    ? String.format(Locale.ROOT, "%d ranks x --grad-accum %d x --batch-size %d x --seq-len %d = %,d tokens per step",
                            state.worldSize(), state.gradAccum(), state.batchSize(), state.seqLen(), state.globalTokensPerStep())
                    : "--grad-accum " + state.gradAccum() + " on " + state.worldSize() + " rank(s)";
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%s was taken with %s; this run has %,d "
                    + "tokens per step: resume with the same tokens per step, e.g. half the --batch-size on twice the "
                    + "ranks (the data order depends on it)", checkpoint, taken, tokens));
        }
    }

    private static void say(PrintStream out, String line) {
        if (out != null) {
            out.println(line);
        }
    }

    private RunManifest manifest(TrainConfig config, GptConfig model, DataOptions.Resolved sources, Backend backend,
                                 int worldSize) throws IOException {
        Map<String, Object> all = new LinkedHashMap<>();
        all.put("model", model);
        all.put("train", config);
        all.put("world_size", worldSize);
        all.put("dtype", compute.dtype().toString());
        all.put("data", data.describe());
        List<String> args = new ArrayList<>(List.of("anvil", "train"));
        args.addAll(trainArgs());
        return new RunManifest(all, args, sources.sha256(), Version.current(), Runtime.version().toString(),
                backend.description(), Instant.now().toString());
    }

    private void report(Trainer.Result result, PrintStream out) {
        if (result.stopReason() != null) {
            List<String> args = trainArgs();
            if (!args.contains("--resume")) {
                args.add("--resume");
            }
            out.println("stopped by " + result.stopReason() + " after step " + result.completedSteps()
                    + (result.lastCheckpoint() == null ? "" : "; saved " + result.lastCheckpoint()));
            out.println("resume with: bin/anvil train " + String.join(" ", args.stream().map(TrainCommand::quote).toList()));
        } else {
            out.printf(Locale.ROOT, "done: %d steps, final loss %.4f%s%n", result.completedSteps(), result.lastLoss(),
                    result.lastCheckpoint() == null ? "" : "; model saved in " + result.lastCheckpoint());
        }
    }

    /**
     * The arguments given to {@code train}: picocli's original arguments are the whole command
     * line's, the subcommand's name included, so drop everything up to it.
     */
    private List<String> trainArgs() {
        List<String> all = spec.commandLine().getParseResult().originalArgs();
        int name = all.indexOf(spec.name());
        return new ArrayList<>(all.subList(name + 1, all.size()));
    }

    private static String quote(String arg) {
        return arg.matches("[A-Za-z0-9_./=:,+-]+") ? arg : "'" + arg.replace("'", "'\\''") + "'";
    }

    /** The preset names, for help and completion. */
    static final class Presets extends ArrayList<String> {
        Presets() {
            super(GptConfig.PRESETS);
        }
    }
}
