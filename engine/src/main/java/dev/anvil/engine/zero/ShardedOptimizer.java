package dev.anvil.engine.zero;

import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.engine.optim.Optimizer;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;

/**
 * ZeRO-1's optimizer: {@link AdamW} over this rank's {@link ShardPlan shard}, with the fp32 master
 * weights of that shard for a BF16 model (whose {@link GptModel} then keeps none). Each step it
 * clips by the global gradient norm, summed from every rank's share exactly the same way on every
 * rank, updates its shard, and all-gathers the parameters through the {@link ShardedGradientSync}.
 *
 * <p>Weight decay follows each tensor as without sharding, and every element's update is the same
 * arithmetic as {@link AdamW}'s over the whole buffer, so with the same gradients and the same clip
 * factor the weights are the same bits.
 */
public final class ShardedOptimizer implements Optimizer, AutoCloseable {

    private final Backend backend;
    private final ShardedGradientSync sync;
    private final AdamW adamw;
    private final Buffer master;

    /**
     * @param model a model whose gradients {@code sync} reduce-scatters; a BF16 one must have been made
     *              without master weights, which this optimizer keeps for its shard instead
     * @throws IllegalArgumentException if a BF16 model holds master weights of its own
     */
    public ShardedOptimizer(Backend backend, GptModel model, AdamWConfig config, ShardedGradientSync sync) {
        if (model.masterWeights() != null) {
            throw new IllegalArgumentException("a sharded optimizer keeps the master weights of its shard: make the "
                    + "BF16 model without master weights of its own");
        }
        this.backend = backend;
        this.sync = sync;
        this.adamw = new AdamW(backend, model.layout(), config, sync.plan().shard());
        long owned = Math.max(1, sync.plan().shard().size());
        this.master = model.dtype() == DType.BF16 ? backend.allocate(DType.FP32, owned) : null;
    }

    /** The AdamW over this rank's shard (its moments and step count). */
    public AdamW adamw() {
        return adamw;
    }

    /** The fp32 master weights of this rank's shard, packed, for a BF16 model; {@code null} for FP32. */
    public float[] exportMaster() {
        if (master == null) {
            return null;
        }
        float[] host = new float[Math.toIntExact(sync.plan().shard().size())];
        backend.download(master.slice(0, host.length), MemorySegment.ofArray(host));
        return host;
    }

    /**
     * Sets the fp32 master weights of this rank's shard (packed), for a BF16 model; ignored for FP32,
     * whose parameters are their own master weights.
     */
    public void importMaster(float[] packed) {
        if (master == null) {
            return;
        }
        if (packed.length != sync.plan().shard().size()) {
            throw new IllegalArgumentException("master weights hold " + packed.length + " elements, the shard "
                    + sync.plan().shard().size());
        }
        backend.upload(master.slice(0, packed.length), MemorySegment.ofArray(packed));
    }

    /**
     * The global norm: each rank's sum of squares over its shard of the mean gradients, summed across
     * ranks in rank order (identical on every rank), rounded to fp32 as {@link AdamW#gradientNorm}'s is.
     */
    @Override
    public float gradientNorm(GptModel model) {
        float sumOfSquares = (float) sync.sumAcrossRanks(adamw.sumOfSquares(model.gradients()));
        return (float) Math.sqrt(sumOfSquares);
    }

    @Override
    public float clipScale(float norm) {
        return adamw.clipScale(norm);
    }

    /** Updates this rank's shard, then all-gathers the parameters from every rank. */
    @Override
    public void step(GptModel model, float lr, float gradScale) {
        adamw.step(model.parameters(), master, model.gradients(), lr, gradScale);
        sync.gatherParameters();
    }

    @Override
    public long stateBytes() {
        return adamw.stateBytes() + (master == null ? 0 : sync.plan().shard().size() * DType.FP32.bytes());
    }

    @Override
    public void close() {
        adamw.close();
        if (master != null) {
            master.close();
        }
    }
}
