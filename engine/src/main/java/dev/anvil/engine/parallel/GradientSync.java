package dev.anvil.engine.parallel;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.ReduceOp;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Averages the gradient buffer across data-parallel ranks in buckets, each bucket's all-reduce
 * starting as soon as the backward pass has finished it, so communication overlaps the backward of
 * the earlier layers (as PyTorch DDP does). Buckets are contiguous slices of the one gradient
 * buffer, filled from its end to its start in backward order.
 *
 * <p>Where the backend keeps gradients in host memory the all-reduce works on them in place;
 * otherwise each bucket is copied into page-locked host staging ({@link Backend#downloadAsync}: on a
 * GPU, a copy stream ordered by an event, so the backward pass is never waited for) and its
 * all-reduce starts once the copy has landed; the results are uploaded back at the end. All
 * collective calls are made from the training thread, in bucket order, as every rank must.
 * FP32 gradients are reduced as FLOAT32, BF16 gradients as BFLOAT16 (half the bytes on the wire;
 * the collective sums each reduction in fp32 and rounds the result to bf16).
 */
public final class GradientSync implements GradientReduction, AutoCloseable {

    /** PyTorch DDP's default bucket size. */
    public static final long DEFAULT_BUCKET_BYTES = 25L << 20;

    /** A bucket: its copy to the host (done at once for host-resident gradients), then its all-reduce. */
    private static final class Pending {
        final long offset, length;
        final CompletableFuture<Void> copied;
        CompletableFuture<Void> reduced;

        Pending(long offset, long length, CompletableFuture<Void> copied) {
            this.offset = offset;
            this.length = length;
            this.copied = copied;
        }
    }

    private final Communicator comm;
    private final Backend backend;
    private final Buffer grads;
    private final ElementType elementType;
    private final int elementBytes;
    private final long bucketElements;
    private final Optional<MemorySegment> hostGrads;
    private final MemorySegment staging;
    private final List<Pending> pending = new ArrayList<>();
    private long readyStart;
    private long readyEnd;
    private long bytesReduced;

    /**
     * @param grads       the gradient buffer, FP32 or BF16
     * @param bucketBytes gradient bytes per all-reduce, at least one element's
     */
    public GradientSync(Communicator comm, Backend backend, Buffer grads, long bucketBytes) {
        this.elementType = switch (grads.dtype()) {
            case FP32 -> ElementType.FLOAT32;
            case BF16 -> ElementType.BFLOAT16;
            case INT32 -> throw new IllegalArgumentException("gradient sync expects FP32 or BF16 gradients, got INT32");
        };
        this.elementBytes = elementType.byteSize();
        if (bucketBytes < elementBytes) {
            throw new IllegalArgumentException("bucket size must be at least one element, got " + bucketBytes + " bytes");
        }
        this.comm = comm;
        this.backend = backend;
        this.grads = grads;
        this.bucketElements = bucketBytes / elementBytes;
        this.hostGrads = backend.hostView(grads);
        this.staging = hostGrads.isPresent() ? null : backend.allocateHost(grads.length() * elementBytes);
        begin();
    }

    /** Gradient bytes all-reduced so far (for throughput metrics). */
    public long bytesReduced() {
        return bytesReduced;
    }

    private void begin() {
        pending.clear();
        readyStart = grads.length();
        readyEnd = grads.length();
    }

    @Override
    public void ready(long offset, long length) {
        GradientReduction.requireAdjoining(offset, length, readyStart);
        readyStart = offset;
        if (readyEnd - readyStart >= bucketElements || readyStart == 0) {
            launch(readyStart, readyEnd - readyStart);
            readyEnd = readyStart;
        }
        startLandedReductions(false);
    }

    /** Starts, in bucket order, the all-reduce of every bucket whose copy has landed (waiting for each when told to). */
    private void startLandedReductions(boolean wait) {
        for (Pending p : pending) {
            if (p.reduced != null) {
                continue;
            }
            if (!wait && !p.copied.isDone()) {
                return;  // a later bucket must not overtake this one
            }
            p.copied.join();
            p.reduced = comm.allReduceAsync(bucket(p.offset, p.length), elementType, ReduceOp.MEAN);
        }
    }

    /** The host memory a bucket is reduced in. */
    private MemorySegment bucket(long offset, long length) {
        return (hostGrads.isPresent() ? hostGrads.get() : staging).asSlice(offset * elementBytes, length * elementBytes);
    }

    private void launch(long offset, long length) {
        if (length == 0) {
            return;
        }
        CompletableFuture<Void> copied = hostGrads.isPresent() ? CompletableFuture.completedFuture(null)
                : backend.downloadAsync(grads.slice(offset, length), bucket(offset, length));
        pending.add(new Pending(offset, length, copied));
        bytesReduced += length * elementBytes;
    }

    /**
     * Waits for every bucket of this backward pass (launching any the pass left unfinished) and
     * puts staged results back on the device; then gradients are the mean over ranks.
     */
    @Override
    public void finish() {
        if (readyEnd > readyStart) {
            launch(readyStart, readyEnd - readyStart);
        }
        startLandedReductions(true);
        for (Pending p : pending) {
            Communicator.await(p.reduced);
            if (hostGrads.isEmpty()) {
                backend.upload(grads.slice(p.offset, p.length), bucket(p.offset, p.length));
            }
        }
        begin();
    }

    @Override
    public void close() {
        if (staging != null) {
            backend.freeHost(staging);
        }
    }
}
