package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.ReduceOp;
import dev.anvil.collective.link.BufferView;
import dev.anvil.collective.link.DataHeader;
import dev.anvil.collective.link.Inbound;
import dev.anvil.collective.proto.OpKind;
import dev.anvil.collective.proto.WireElementType;
import dev.anvil.collective.proto.WireReduceOp;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One channel's part of one collective on one rank: which slice goes where at each step, and what to do with each
 * received slice. Its receiving side runs on the channel's receiver thread, its sending side on the sender thread.
 *
 * <p>All-reduce is the bandwidth-optimal ring: R-1 reduce-scatter steps, after which rank r owns the fully reduced
 * segment r (its {@link dev.anvil.collective.Shards shard}), then R-1 all-gather steps that circulate the owners'
 * segments. Reduce-scatter and all-gather alone are those two halves, so a reduce-scatter followed by an all-gather
 * gives bit for bit what an all-reduce gives (the same additions in the same order). Each received slice is reduced
 * and at once queued to be forwarded as the next step's slice, so slices of all steps are in flight together. Every
 * rank receives the owner's bytes for every segment, so results are bit-identical across ranks. A slice to be stored
 * is read from the link straight into place; one to be reduced is read into the link's own memory and added from
 * there into place.
 *
 * <p>Broadcast pipelines the root's slices along the ring, each rank forwarding what it receives.
 */
final class RingOp {
    final Collective collective;
    final long seq;
    final BufferView sendView;
    private final BufferView receiveView;
    private final OpKind kind;
    private final MemorySegment buf;
    private final ElementType type;
    private final ReduceOp reduce;
    private final int root;
    private final int rank;
    private final int ranks;
    private final int channel;
    private final RingLayout layout;
    private final long elementCount;
    private final int expectedFrames;
    private final BitSet received;
    private int receivedFrames;
    /** Frames still to receive plus frames still to send; the part is done at zero. */
    private final AtomicInteger outstanding;

    RingOp(Collective collective, OpKind kind, MemorySegment buf, ElementType type, ReduceOp reduce, int root,
            int rank, int ranks, int channel, int channels, int maxSliceBytes) {
        this.collective = collective;
        this.seq = collective.seq;
        this.kind = kind;
        this.buf = buf;
        this.type = type;
        this.reduce = reduce;
        this.root = root;
        this.rank = rank;
        this.ranks = ranks;
        this.channel = channel;
        int sends;
        if (kind != OpKind.BROADCAST) {
            this.elementCount = buf.byteSize() / type.byteSize();
            this.layout = new RingLayout(elementCount, ranks, channels, channel, type.byteSize(), maxSliceBytes);
            this.expectedFrames = steps() * layout.slices();
            sends = expectedFrames;
        } else {
            this.elementCount = buf.byteSize();
            this.layout = new RingLayout(elementCount, 1, channels, channel, 1, maxSliceBytes);
            this.expectedFrames = rank == root ? 0 : layout.slices();
            sends = rank == root || mod(rank + 1) != root ? layout.slices() : 0;
        }
        this.received = new BitSet(steps() * layout.slices());
        this.outstanding = new AtomicInteger(expectedFrames + sends);
        this.sendView = new BufferView(buf, maxSliceBytes);
        this.receiveView = new BufferView(buf, maxSliceBytes);
    }

    /** Queues what this rank contributes before receiving anything. */
    void start(RingChannel channel) {
        if (kind != OpKind.BROADCAST || rank == root) {
            for (int j = 0; j < layout.slices(); j++) {
                channel.enqueue(this, 0, j);
            }
        }
    }

    /**
     * Consumes one received chunk (header already read) from {@code in} and forwards whatever it unblocks: in place
     * when the outgoing link offers a free place (the sum of a reduce-scatter step then goes straight to the right
     * neighbour without touching this rank's buffer), through the sender's queue otherwise. Both give the same bits.
     *
     * @param forwardHeader this thread's header for in-place forwards
     * @param from who sent it, for error messages
     * @return whether every expected chunk has now arrived
     * @throws CollectiveException when the chunk does not belong to this part as issued on this rank
     */
    boolean receive(DataHeader h, Inbound in, RingChannel channel, DataHeader forwardHeader, String from)
            throws IOException {
        checkMatches(h, from);
        int step = h.step;
        int slice = h.slice;
        if (step < 0 || slice < 0 || step >= steps() || slice >= layout.slices()
                || (kind == OpKind.BROADCAST && step != distance() - 1)) {
            throw new CollectiveException(from + " sent step " + step + " slice " + slice + " of collective #" + seq
                    + ", which has " + steps() + " steps of " + layout.slices() + " slices");
        }
        int bit = step * layout.slices() + slice;
        if (received.get(bit)) {
            throw new CollectiveException(from + " sent step " + step + " slice " + slice + " of collective #" + seq
                    + " twice");
        }
        int segment = kind != OpKind.BROADCAST ? receiveSegment(step) : 0;
        long offset = layout.sliceOffset(segment, slice);
        int length = layout.sliceBytes(segment, slice);
        if (h.payloadLength != length) {
            throw new CollectiveException(from + " sent " + Integer.toUnsignedString(h.payloadLength)
                    + " bytes for step " + step + " slice " + slice + " of collective #" + seq + "; expected " + length);
        }
        boolean forward = kind != OpKind.BROADCAST ? step + 1 < steps() : mod(rank + 1) != root;
        MemorySegment place = forward ? channel.claim() : null;
        boolean published = false;
        try {
            if (step < reduceSteps()) {
                MemorySegment partial = in.payload();
                if (place != null && step + 1 < reduceSteps()) {
                    Reduction.sum(type, place, 0, buf, offset, partial, 0, length, 1);
                } else {
                    int divisor = step == reduceSteps() - 1 && reduce == ReduceOp.MEAN ? ranks : 1;
                    Reduction.accumulate(type, buf, offset, partial, 0, length, divisor);
                    copy(place, offset, length);
                }
            } else {
                in.payloadInto(receiveView, offset);
                copy(place, offset, length);
            }
            if (place != null) {
                fill(forwardHeader, step + 1, slice);
                published = true;
                channel.publishClaimed(forwardHeader);
            }
        } finally {
            if (place != null && !published) {
                channel.dropClaim();
            }
        }
        received.set(bit);
        receivedFrames++;
        collective.progress();
        if (place != null) {
            sent();
        } else if (forward) {
            channel.enqueue(this, step + 1, slice);
        }
        finishedOne();
        return receivedFrames == expectedFrames;
    }

    private void copy(MemorySegment place, long offset, int length) {
        if (place != null) {
            MemorySegment.copy(buf, offset, place, 0, length);
        }
    }

    /**
     * Fills {@code h} for slice {@code slice} of step {@code step}.
     *
     * @return the byte offset of the slice's payload in the buffer
     */
    long fill(DataHeader h, int step, int slice) {
        int segment = kind == OpKind.BROADCAST ? 0 : step == 0 ? firstSegment() : receiveSegment(step - 1);
        h.type = DataHeader.CHUNK;
        h.kind = kind;
        h.elementType = wireType();
        h.reduceOp = wireReduce();
        h.opSeq = seq;
        h.elementCount = elementCount;
        h.step = step;
        h.slice = slice;
        h.root = root;
        h.payloadLength = layout.sliceBytes(segment, slice);
        h.channel = channel;
        return layout.sliceOffset(segment, slice);
    }

    /** One slice left this rank. */
    void sent() {
        collective.progress();
        finishedOne();
    }

    private void finishedOne() {
        if (outstanding.decrementAndGet() == 0) {
            collective.partDone();
        }
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

    private void checkMatches(DataHeader h, String from) {
        if (h.kind != kind || h.elementType != wireType() || h.reduceOp != wireReduce()
                || h.elementCount != elementCount || h.root != root || h.channel != channel) {
            throw new CollectiveException("collective mismatch: " + from + " sent " + h.kind + " of "
                    + h.elementCount + " elements (" + h.elementType + ", " + h.reduceOp + ", root " + h.root
                    + ", channel " + h.channel + ") as collective #" + seq + " but this rank issued " + describe()
                    + " on channel " + channel + "; every rank must issue the same collectives in the same order");
        }
    }

    private WireElementType wireType() {
        if (kind == OpKind.BROADCAST) {
            return WireElementType.WIRE_ELEMENT_TYPE_UNSPECIFIED;
        }
        return switch (type) {
            case FLOAT32 -> WireElementType.FLOAT32;
            case BFLOAT16 -> WireElementType.BFLOAT16;
        };
    }

    private WireReduceOp wireReduce() {
        if (reduceSteps() == 0) {
            return WireReduceOp.WIRE_REDUCE_OP_UNSPECIFIED;
        }
        return switch (reduce) {
            case SUM -> WireReduceOp.SUM;
            case MEAN -> WireReduceOp.MEAN;
        };
    }

    private int steps() {
        return kind == OpKind.ALL_REDUCE ? 2 * (ranks - 1) : ranks - 1;
    }

    /** Leading steps that add the received slice (the reduce-scatter half); the rest store it. */
    private int reduceSteps() {
        return kind == OpKind.ALL_REDUCE || kind == OpKind.REDUCE_SCATTER ? ranks - 1 : 0;
    }

    /** Reducing starts from the left neighbour's shard, so that after R-1 steps each rank owns its own. */
    private int firstSegment() {
        return reduceSteps() > 0 ? mod(rank - 1) : rank;
    }

    private int receiveSegment(int step) {
        int reducing = reduceSteps();
        return step < reducing ? mod(rank - step - 2) : mod(rank - (step - reducing) - 1);
    }

    private int distance() {
        return mod(rank - root);
    }

    private int mod(int x) {
        return Math.floorMod(x, ranks);
    }
}
