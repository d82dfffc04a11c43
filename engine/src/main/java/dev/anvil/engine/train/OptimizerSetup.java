package dev.anvil.engine.train;

import dev.anvil.collective.Communicator;
import dev.anvil.engine.checkpoint.Checkpointer;
import dev.anvil.engine.checkpoint.RunManifest;
import dev.anvil.engine.checkpoint.ShardedCheckpoints;
import dev.anvil.engine.checkpoint.TrainingState;
import dev.anvil.engine.model.GptInit;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.optim.Optimizer;
import dev.anvil.engine.optim.ParameterShard;
import dev.anvil.engine.parallel.GradientBuckets;
import dev.anvil.engine.parallel.GradientReduction;
import dev.anvil.engine.parallel.GradientSync;
import dev.anvil.engine.zero.ShardPlan;
import dev.anvil.engine.zero.ShardedGradientSync;
import dev.anvil.engine.zero.ShardedOptimizer;
import dev.anvil.kernels.Backend;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A rank's optimizer and the reduction of its gradients: AdamW over every weight, with the gradients
 * all-reduced when there are several ranks ({@link GradientSync}); or, sharded (ZeRO-1), AdamW over
 * this rank's shard with the gradients reduce-scattered and the parameters all-gathered
 * ({@link ShardedOptimizer}). Either way in the same buckets.
 */
public final class OptimizerSetup implements AutoCloseable {

    private final GptModel model;
    private final List<GradientBuckets.Bucket> buckets;
    private final AdamW adamw;
    private final ShardedOptimizer sharded;
    private final GradientSync allReduce;
    private final ShardedGradientSync reduceScatter;

    /** {@link #OptimizerSetup(Backend, GptModel, AdamWConfig, Communicator, boolean, long)} in PyTorch DDP's buckets. */
    public OptimizerSetup(Backend backend, GptModel model, AdamWConfig config, Communicator comm, boolean shard) {
        this(backend, model, config, comm, shard, GradientSync.DEFAULT_BUCKET_BYTES);
    }

    /**
     * @param comm        the data-parallel group, or {@code null} for one process
     * @param shard       whether to shard the optimizer state (needs {@code comm}); a BF16 {@code model}
     *                    must then have been made without master weights
     * @param bucketBytes gradient bytes per bucket
     */
    public OptimizerSetup(Backend backend, GptModel model, AdamWConfig config, Communicator comm, boolean shard,
                          long bucketBytes) {
        if (shard && comm == null) {
            throw new IllegalArgumentException("sharding the optimizer state needs data-parallel ranks");
        }
        this.model = model;
        this.buckets = GradientBuckets.of(model.layout(), bucketBytes, model.dtype().bytes());
        if (shard) {
            this.allReduce = null;
            this.reduceScatter = new ShardedGradientSync(comm, backend,
                    new ShardPlan(buckets, comm.rank(), comm.worldSize()), model.gradients(), model.parameters());
            this.sharded = new ShardedOptimizer(backend, model, config, reduceScatter);
            this.adamw = sharded.adamw();
        } else {
            this.reduceScatter = null;
            this.sharded = null;
            this.allReduce = comm == null ? null : new GradientSync(comm, backend, model.gradients(), bucketBytes);
            this.adamw = new AdamW(backend, model.layout(), config);
        }
    }

    /** The optimizer the trainer steps. */
    public Optimizer optimizer() {
        return sharded != null ? sharded : adamw;
    }

    /** The reduction of the gradients between ranks, or {@code null} for one process. */
    public GradientReduction sync() {
        return sharded != null ? reduceScatter : allReduce;
    }

    /** Whether the optimizer state is sharded across ranks. */
    public boolean sharded() {
        return sharded != null;
    }

    /** Every rank's shard of the parameters, by rank: what a sharded checkpoint's index lists. */
    public List<ParameterShard> shards(int ranks) {
        List<ParameterShard> all = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            all.add(new ShardPlan(buckets, r, ranks).shard());
        }
        return all;
    }

    /** Sets the weights a run starts from (layout order, fp32): the model's, and the optimizer's master shard. */
    public void load(float[] weights) {
        model.writeParameters(weights);
        if (sharded != null) {
            sharded.importMaster(adamw.shard().gather(weights));
        }
    }

    /** Sets GPT-2's initial weights from {@code seed} (see {@link GptInit}). */
    public void initialize(long seed) {
        load(GptInit.parameters(model.layout(), seed));
    }

    /** Restores a checkpoint of any layout into the model and this optimizer. */
    public TrainingState restore(Path checkpoint) throws IOException {
        return Checkpointer.restore(checkpoint, model, adamw, sharded == null ? null : sharded::importMaster);
    }

    /** What a checkpoint of the whole optimizer holds now. */
    public Checkpointer.Snapshot snapshot(TrainingState state, RunManifest manifest) {
        return Checkpointer.snapshot(model, adamw, state, manifest);
    }

    /** What this rank writes of a sharded checkpoint now; {@code manifest} only on rank 0. */
    public ShardedCheckpoints.Snapshot shardSnapshot(TrainingState state, RunManifest manifest) {
        return new ShardedCheckpoints.Snapshot(state, adamw.exportState(), sharded.exportMaster(), model.config(),
                manifest == null ? null : model.readParameters(), manifest);
    }

    @Override
    public void close() {
        if (sharded != null) {
            sharded.close();
            reduceScatter.close();
        } else {
            adamw.close();
            if (allReduce != null) {
                allReduce.close();
            }
        }
    }
}
