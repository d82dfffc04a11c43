package dev.anvil.collective.link;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * A collective's buffer as one link thread sees it: the segment, and {@link ByteBuffer} windows over it for socket
 * reads and writes straight into and out of place. Windows are made once per gigabyte per collective and reused for
 * every frame, so moving a frame allocates nothing. Not thread-safe: one view per thread.
 */
public final class BufferView {
    private static final long WINDOW = 1L << 30;
    private static final ByteBuffer EMPTY = ByteBuffer.allocateDirect(0);

    private final MemorySegment segment;
    private final int maxSliceBytes;
    private final ByteBuffer[] windows;

    /**
     * @param segment native memory or a {@code byte[]} heap segment
     * @param maxSliceBytes largest range ever asked for
     */
    public BufferView(MemorySegment segment, int maxSliceBytes) {
        this.segment = segment;
        this.maxSliceBytes = maxSliceBytes;
        this.windows = new ByteBuffer[(int) ((segment.byteSize() + WINDOW - 1) / WINDOW)];
    }

    /** The whole buffer. */
    public MemorySegment segment() {
        return segment;
    }

    /** A buffer over bytes {@code [offset, offset + length)}, positioned on them; valid until the next call. */
    public ByteBuffer window(long offset, int length) {
        if (length == 0) {
            return EMPTY; // capacity 0: nothing can change it, so it may be shared
        }
        int w = (int) (offset / WINDOW);
        ByteBuffer b = windows[w];
        if (b == null) {
            long start = w * WINDOW;
            b = segment.asSlice(start, Math.min(segment.byteSize() - start, WINDOW + maxSliceBytes)).asByteBuffer();
            windows[w] = b;
        }
        int at = (int) (offset - w * WINDOW);
        return b.limit(at + length).position(at);
    }
}
