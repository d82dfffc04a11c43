package dev.anvil.engine.zero;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.ReduceOp;
import dev.anvil.engine.parallel.GradientBuckets.Bucket;
import dev.anvil.engine.parallel.GradientReduction;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * The communication of ZeRO-1: reduce-scatters the gradients bucket by bucket as the backward pass
 * finishes them (overlapping it, as {@link dev.anvil.engine.parallel.GradientSync}'s all-reduce
 * does), so each rank ends with the mean gradients of its {@link ShardPlan shard}; after the update,
 * all-gathers the parameters in the same buckets, so every rank has all of them again. Parameters
 * travel in the model's type: half the bytes for a BF16 model.
 *
 * <p>Where the backend keeps buffers in host memory the collectives work on them in place;
 * otherwise a bucket is staged through one host buffer, shared by gradients and parameters (they
 * have the same type and are never in flight together).
 */
public final class ShardedGradientSync implements GradientReduction, AutoCloseable {

    private final Communicator comm;
    private final Backend backend;
    private final ShardPlan plan;
    private final Buffer grads;
    private final Buffer params;
    private final ElementType type;
    private final int elementBytes;
    private final Optional<MemorySegment> hostGrads;
    private final Optional<MemorySegment> hostParams;
    private final Arena stagingArena;
    private final MemorySegment staging;
    private final MemorySegment partials;
    private final List<CompletableFuture<Void>> pending = new ArrayList<>();
    private int launched;
    private long readyStart;

    /**
     * @param grads  the gradient buffer, FP32 or BF16
     * @param params the parameter buffer, of the gradients' type and length
     */
    public ShardedGradientSync(Communicator comm, Backend backend, ShardPlan plan, Buffer grads, Buffer params) {
        if (comm.worldSize() != plan.ranks() || comm.rank() != plan.rank()) {
            throw new IllegalArgumentException("the plan is for rank " + plan.rank() + " of " + plan.ranks()
                    + ", the communicator is rank " + comm.rank() + " of " + comm.worldSize());
        }
        if (grads.dtype() != params.dtype() || grads.length() != params.length()) {
            throw new IllegalArgumentException("gradients and parameters must have one type and length, got "
                    + grads.dtype() + "[" + grads.length() + "] and " + params.dtype() + "[" + params.length() + "]");
        }
        this.type = switch (grads.dtype()) {
            case FP32 -> ElementType.FLOAT32;
            case BF16 -> ElementType.BFLOAT16;
            case INT32 -> throw new IllegalArgumentException("gradient sync expects FP32 or BF16 gradients, got INT32");
        };
        this.comm = comm;
        this.backend = backend;
        this.plan = plan;
        this.grads = grads;
        this.params = params;
        this.elementBytes = type.byteSize();
        this.hostGrads = backend.hostView(grads);
        this.hostParams = backend.hostView(params);
        boolean staged = hostGrads.isEmpty() || hostParams.isEmpty();
        this.stagingArena = Arena.ofShared();
        this.staging = staged ? stagingArena.allocate(grads.length() * elementBytes, 64) : null;
        this.partials = stagingArena.allocate((long) Double.BYTES * plan.ranks(), 8);
        begin();
    }

    /** The shard plan this sync follows. */
    public ShardPlan plan() {
        return plan;
    }

    private void begin() {
        pending.clear();
        launched = 0;
        readyStart = grads.length();
    }

    @Override
    public void ready(long offset, long length) {
        GradientReduction.requireAdjoining(offset, length, readyStart);
        readyStart = offset;
        List<Bucket> buckets = plan.buckets();
        while (launched < buckets.size() && buckets.get(launched).offset() >= readyStart) {
            reduceScatter(buckets.get(launched++));
        }
    }

    private void reduceScatter(Bucket b) {
        MemorySegment host = hostGrads.map(h -> slice(h, b)).orElseGet(() -> {
            backend.download(grads.slice(b.offset(), b.length()), slice(staging, b));
            return slice(staging, b);
        });
        pending.add(comm.reduceScatterAsync(host, type, ReduceOp.MEAN));
    }

    /**
     * Waits for every bucket's reduce-scatter (starting any the backward pass left); then this
     * rank's shard of the gradient buffer holds the mean over ranks. The rest of the buffer is
     * garbage until the gradients are next zeroed.
     */
    @Override
    public void finish() {
        while (launched < plan.buckets().size()) {
            reduceScatter(plan.buckets().get(launched++));
        }
        awaitPending();
        if (hostGrads.isEmpty()) {
            for (Bucket b : plan.buckets()) {
                long start = plan.shardStart(b), length = plan.shardLength(b);
                backend.upload(grads.slice(start, length), staging.asSlice(start * elementBytes, length * elementBytes));
            }
        }
        begin();
    }

    /**
     * All-gathers the parameters, bucket by bucket: each rank sends the shard it updated and
     * receives the others', so every rank holds the same updated parameters.
     */
    public void gatherParameters() {
        for (Bucket b : plan.buckets()) {
            MemorySegment host;
            if (hostParams.isPresent()) {
                host = slice(hostParams.get(), b);
            } else {
                long start = plan.shardStart(b), length = plan.shardLength(b);
                backend.download(params.slice(start, length), staging.asSlice(start * elementBytes, length * elementBytes));
                host = slice(staging, b);
            }
            pending.add(comm.allGatherAsync(host, type));
        }
        awaitPending();
        if (hostParams.isEmpty()) {
            for (Bucket b : plan.buckets()) {
                backend.upload(params.slice(b.offset(), b.length()), slice(staging, b));
            }
        }
    }

    /**
     * The sum over ranks of one number per rank, exactly the same on every rank: the numbers are
     * all-gathered as raw bytes (no rounding on the way) and added in double in rank order.
     */
    public double sumAcrossRanks(double value) {
        partials.setAtIndex(ValueLayout.JAVA_DOUBLE, plan.rank(), value);
        // An all-gather only copies bytes, so FLOAT32 pairs carry each double's bits unchanged.
        comm.allGather(partials, ElementType.FLOAT32);
        double sum = 0;
        for (int r = 0; r < plan.ranks(); r++) {
            sum += partials.getAtIndex(ValueLayout.JAVA_DOUBLE, r);
        }
        return sum;
    }

    private void awaitPending() {
        try {
            for (CompletableFuture<Void> p : pending) {
                Communicator.await(p);
            }
        } finally {
            pending.clear();
        }
    }

    private MemorySegment slice(MemorySegment whole, Bucket b) {
        return whole.asSlice(b.offset() * elementBytes, b.length() * elementBytes);
    }

    @Override
    public void close() {
        stagingArena.close();
    }
}
