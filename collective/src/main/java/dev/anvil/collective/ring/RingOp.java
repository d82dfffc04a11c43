package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.ReduceOp;
import dev.anvil.collective.proto.Chunk;
import dev.anvil.collective.proto.OpKind;
import dev.anvil.collective.proto.WireElementType;
import dev.anvil.collective.proto.WireReduceOp;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;
import java.util.concurrent.CompletableFuture;

/**
 * One collective on one rank: which slice goes where at each step, and what to do with each received slice. Confined
 * to the ring's event loop.
 *
 * <p>All-reduce is the bandwidth-optimal ring: R-1 reduce-scatter steps, after which rank r owns the fully reduced
 * segment r (its {@link dev.anvil.collective.Shards shard}), then R-1 all-gather steps that circulate the owners'
 * segments. Reduce-scatter and all-gather alone are those two halves, so a reduce-scatter followed by an all-gather
 * gives bit for bit what an all-reduce gives (the same additions in the same order). Each received slice is reduced
 * and immediately forwarded as the next step's slice, so slices of all steps are in flight at once. Every rank
 * receives the owner's bytes for every segment, so results are bit-identical across ranks.
 *
 * <p>Broadcast pipelines the root's slices along the ring, each rank forwarding what it receives.
 */
final class RingOp {
    /** Sends one slice of this op to the right neighbour. */
    interface Sender {
        void send(RingOp op, int step, int slice, MemorySegment region);
    }

    final long seq;
    final OpKind kind;
    final MemorySegment buf;
    final ElementType type;
    final ReduceOp reduce;
    final int root;
    final CompletableFuture<Void> future = new CompletableFuture<>();
    long lastProgressNanos;
    int pendingWrites;

    private final int rank;
    private final int ranks;
    private final RingLayout layout;
    private final long elementCount;
    private final int expectedFrames;
    private final BitSet received;
    private int receivedFrames;
    private boolean started;

    private RingOp(long seq, OpKind kind, MemorySegment buf, ElementType type, ReduceOp reduce, int root, int rank,
            int ranks, int maxSliceBytes) {
        this.seq = seq;
        this.kind = kind;
        this.buf = buf;
        this.type = type;
        this.reduce = reduce;
        this.root = root;
        this.rank = rank;
        this.ranks = ranks;
        if (kind != OpKind.BROADCAST) {
            this.elementCount = buf.byteSize() / type.byteSize();
            this.layout = new RingLayout(elementCount, ranks, type.byteSize(), maxSliceBytes);
            this.expectedFrames = steps() * layout.slices();
        } else {
            this.elementCount = buf.byteSize();
            this.layout = new RingLayout(elementCount, 1, 1, maxSliceBytes);
            this.expectedFrames = rank == root ? 0 : layout.slices();
        }
        this.received = new BitSet(steps() * layout.slices());
    }

    static RingOp allReduce(long seq, MemorySegment buf, ElementType type, ReduceOp reduce, int rank, int ranks,
            int maxSliceBytes) {
        return new RingOp(seq, OpKind.ALL_REDUCE, buf, type, reduce, -1, rank, ranks, maxSliceBytes);
    }

    static RingOp reduceScatter(long seq, MemorySegment buf, ElementType type, ReduceOp reduce, int rank, int ranks,
            int maxSliceBytes) {
        return new RingOp(seq, OpKind.REDUCE_SCATTER, buf, type, reduce, -1, rank, ranks, maxSliceBytes);
    }

    static RingOp allGather(long seq, MemorySegment buf, ElementType type, int rank, int ranks, int maxSliceBytes) {
        return new RingOp(seq, OpKind.ALL_GATHER, buf, type, ReduceOp.SUM, -1, rank, ranks, maxSliceBytes);
    }

    static RingOp broadcast(long seq, MemorySegment buf, int root, int rank, int ranks, int maxSliceBytes) {
        return new RingOp(seq, OpKind.BROADCAST, buf, ElementType.FLOAT32, ReduceOp.SUM, root, rank, ranks,
                maxSliceBytes);
    }

    /** Sends what this rank contributes before receiving anything. */
    void start(Sender sender, long nowNanos) {
        started = true;
        lastProgressNanos = nowNanos;
        if (kind != OpKind.BROADCAST) {
            if (steps() == 0) {
                return;
            }
            // Reducing starts from the left neighbour's shard, so that after R-1 steps each rank owns its own.
            int first = reduceSteps() > 0 ? mod(rank - 1) : rank;
            for (int j = 0; j < layout.slices(); j++) {
                sender.send(this, 0, j, region(first, j));
            }
        } else if (rank == root) {
            for (int j = 0; j < layout.slices(); j++) {
                sender.send(this, 0, j, region(0, j));
            }
        }
    }

    /**
     * Consumes one received slice and forwards whatever it unblocks.
     *
     * @param from who sent it, for error messages
     * @throws CollectiveException when the chunk does not belong to this op as issued on this rank
     */
    void onChunk(Chunk c, MemorySegment payload, Sender sender, String from, long nowNanos) {
        checkMatches(c, from);
        int step = c.getStep();
        int slice = c.getSlice();
        if (step >= steps() || slice >= layout.slices() || (kind == OpKind.BROADCAST && step != distance() - 1)) {
            throw new CollectiveException(from + " sent step " + step + " slice " + slice + " of collective #" + seq
                    + ", which has " + steps() + " steps of " + layout.slices() + " slices");
        }
        int bit = step * layout.slices() + slice;
        if (received.get(bit)) {
            throw new CollectiveException(from + " sent step " + step + " slice " + slice + " of collective #" + seq
                    + " twice");
        }
        int segment = kind != OpKind.BROADCAST ? receiveSegment(step) : 0;
        MemorySegment region = region(segment, slice);
        if (payload.byteSize() != region.byteSize()) {
            throw new CollectiveException(from + " sent " + payload.byteSize() + " bytes for step " + step + " slice "
                    + slice + " of collective #" + seq + "; expected " + region.byteSize());
        }
        received.set(bit);
        receivedFrames++;
        lastProgressNanos = nowNanos;
        if (step < reduceSteps()) {
            int divisor = step == reduceSteps() - 1 && reduce == ReduceOp.MEAN ? ranks : 1;
            Reduction.accumulate(type, region, payload, divisor);
        } else {
            MemorySegment.copy(payload, 0, region, 0, region.byteSize());
        }
        boolean forward = kind != OpKind.BROADCAST ? step + 1 < steps() : mod(rank + 1) != root;
        if (forward) {
            sender.send(this, step + 1, slice, region);
        }
    }

    /** Whether every expected slice arrived and every send left this process. */
    boolean isDone() {
        return started && receivedFrames == expectedFrames && pendingWrites == 0;
    }

    /** The descriptive part of a chunk header for {@code step} and {@code slice}. */
    Chunk.Builder header(int step, int slice, long payloadBytes) {
        return Chunk.newBuilder()
                .setOpSeq(seq)
                .setKind(kind)
                .setStep(step)
                .setSlice(slice)
                .setElementCount(elementCount)
                .setElementType(kind != OpKind.BROADCAST ? wire(type) : WireElementType.WIRE_ELEMENT_TYPE_UNSPECIFIED)
                .setReduceOp(reduceSteps() > 0 ? wire(reduce) : WireReduceOp.WIRE_REDUCE_OP_UNSPECIFIED)
                .setRoot(root)
                .setPayloadLength((int) payloadBytes);
    }

    /** Human description for error messages. */
    String describe() {
        return switch (kind) {
            case ALL_REDUCE -> "all-reduce #" + seq + " (" + reduce + " of " + elementCount + " " + type + ")";
            case REDUCE_SCATTER -> "reduce-scatter #" + seq + " (" + reduce + " of " + elementCount + " " + type + ")";
            case ALL_GATHER -> "all-gather #" + seq + " (" + elementCount + " " + type + ")";
            default -> "broadcast #" + seq + " (" + elementCount + " bytes from rank " + root + ")";
        };
    }

    private void checkMatches(Chunk c, String from) {
        Chunk expected = header(c.getStep(), c.getSlice(), c.getPayloadLength()).build();
        if (!expected.equals(c)) {
            throw new CollectiveException("collective mismatch: " + from + " sent " + c.getKind() + " of "
                    + c.getElementCount() + " elements (" + c.getElementType() + ", " + c.getReduceOp() + ", root "
                    + c.getRoot() + ") as collective #" + seq + " but this rank issued " + describe()
                    + "; every rank must issue the same collectives in the same order");
        }
    }

    private int steps() {
        return kind == OpKind.ALL_REDUCE ? 2 * (ranks - 1) : ranks - 1;
    }

    /** Leading steps that add the received slice (the reduce-scatter half); the rest copy it. */
    private int reduceSteps() {
        return kind == OpKind.ALL_REDUCE || kind == OpKind.REDUCE_SCATTER ? ranks - 1 : 0;
    }

    private int receiveSegment(int step) {
        int reducing = reduceSteps();
        return step < reducing ? mod(rank - step - 2) : mod(rank - (step - reducing) - 1);
    }

    private int distance() {
        return mod(rank - root);
    }

    private MemorySegment region(int segment, int slice) {
        return buf.asSlice(layout.sliceOffset(segment, slice), layout.sliceBytes(segment, slice));
    }

    private int mod(int x) {
        return Math.floorMod(x, ranks);
    }

    private static WireElementType wire(ElementType t) {
        return switch (t) {
            case FLOAT32 -> WireElementType.FLOAT32;
            case BFLOAT16 -> WireElementType.BFLOAT16;
        };
    }

    private static WireReduceOp wire(ReduceOp op) {
        return switch (op) {
            case SUM -> WireReduceOp.SUM;
            case MEAN -> WireReduceOp.MEAN;
        };
    }
}
