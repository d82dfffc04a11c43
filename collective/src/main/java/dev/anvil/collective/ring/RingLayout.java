package dev.anvil.collective.ring;

import dev.anvil.collective.Shards;

/**
 * How one channel sees a buffer of {@code elements}: the buffer is cut into {@code segments} near-equal segments (one
 * per rank for all-reduce, one for broadcast; segment {@code r} is rank {@code r}'s {@link Shards shard}), each
 * segment into {@code channels} near-equal parts, and this channel's part of every segment into the same number of
 * near-equal slices of at most {@code maxSliceBytes}. A slice is the unit that travels in one frame, so sending,
 * receiving and reducing pipeline. Cutting within segments keeps shard ownership and the order in which each
 * element is reduced independent of the channel count and the slice size. Every rank computes the same layout.
 */
public final class RingLayout {
    private final long elements;
    private final int segments;
    private final int channels;
    private final int channel;
    private final int elementBytes;
    private final int slices;

    /**
     * @param elements buffer length in elements
     * @param segments number of segments
     * @param channels number of channels
     * @param channel this channel, in {@code [0, channels)}
     * @param elementBytes bytes per element
     * @param maxSliceBytes upper bound on one slice's payload
     */
    public RingLayout(long elements, int segments, int channels, int channel, int elementBytes, int maxSliceBytes) {
        if (maxSliceBytes < elementBytes) {
            throw new IllegalArgumentException("slice size " + maxSliceBytes + " smaller than one element");
        }
        this.elements = elements;
        this.segments = segments;
        this.channels = channels;
        this.channel = channel;
        this.elementBytes = elementBytes;
        long maxPart = 0;
        for (int s = 0; s < segments; s++) {
            maxPart = Math.max(maxPart, partEnd(s) - partStart(s));
        }
        long sliceElements = maxSliceBytes / elementBytes;
        long count = Math.max(1, (maxPart + sliceElements - 1) / sliceElements);
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("buffer of " + elements + " elements needs too many slices");
        }
        this.slices = (int) count;
    }

    /** Slices of this channel's part of each segment. */
    public int slices() {
        return slices;
    }

    /** Number of segments. */
    public int segments() {
        return segments;
    }

    /** Byte offset of slice {@code slice} of this channel's part of segment {@code segment}. */
    public long sliceOffset(int segment, int slice) {
        return sliceStart(segment, slice) * elementBytes;
    }

    /** Byte length of that slice (may be 0 for tiny buffers). */
    public int sliceBytes(int segment, int slice) {
        return (int) ((sliceStart(segment, slice + 1) - sliceStart(segment, slice)) * elementBytes);
    }

    private long sliceStart(int segment, int slice) {
        long s = partStart(segment);
        return s + (partEnd(segment) - s) * slice / slices;
    }

    private long partStart(int segment) {
        long s = Shards.start(elements, segments, segment);
        return s + Shards.start(Shards.start(elements, segments, segment + 1) - s, channels, channel);
    }

    private long partEnd(int segment) {
        long s = Shards.start(elements, segments, segment);
        return s + Shards.start(Shards.start(elements, segments, segment + 1) - s, channels, channel + 1);
    }
}
