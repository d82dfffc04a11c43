package dev.anvil.collective.ring;

import dev.anvil.collective.Shards;

/**
 * How a buffer of {@code elements} is cut for the ring: into {@code segments} near-equal segments (one per rank for
 * all-reduce, one for broadcast), each cut into the same number of near-equal slices of at most
 * {@code maxSliceBytes}. A slice is the unit that travels in one frame, so sending, receiving and reducing pipeline.
 * Every rank computes the same layout from the same inputs. Segment {@code r} is rank {@code r}'s {@link Shards shard}.
 */
public final class RingLayout {
    private final long elements;
    private final int segments;
    private final int elementBytes;
    private final int slices;

    /**
     * @param elements buffer length in elements
     * @param segments number of segments
     * @param elementBytes bytes per element
     * @param maxSliceBytes upper bound on one slice's payload
     */
    public RingLayout(long elements, int segments, int elementBytes, int maxSliceBytes) {
        if (maxSliceBytes < elementBytes) {
            throw new IllegalArgumentException("slice size " + maxSliceBytes + " smaller than one element");
        }
        this.elements = elements;
        this.segments = segments;
        this.elementBytes = elementBytes;
        long maxSegment = (elements + segments - 1) / segments;
        long sliceElements = maxSliceBytes / elementBytes;
        long count = Math.max(1, (maxSegment + sliceElements - 1) / sliceElements);
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("buffer of " + elements + " elements needs too many slices");
        }
        this.slices = (int) count;
    }

    /** Slices per segment. */
    public int slices() {
        return slices;
    }

    /** Number of segments. */
    public int segments() {
        return segments;
    }

    /** Byte offset of slice {@code slice} of segment {@code segment}. */
    public long sliceOffset(int segment, int slice) {
        return sliceStart(segment, slice) * elementBytes;
    }

    /** Byte length of slice {@code slice} of segment {@code segment} (may be 0 for tiny buffers). */
    public long sliceBytes(int segment, int slice) {
        return (sliceStart(segment, slice + 1) - sliceStart(segment, slice)) * elementBytes;
    }

    private long sliceStart(int segment, int slice) {
        long s = segmentStart(segment);
        long e = segmentStart(segment + 1);
        return s + (e - s) * slice / slices;
    }

    private long segmentStart(int segment) {
        return Shards.start(elements, segments, segment);
    }
}
