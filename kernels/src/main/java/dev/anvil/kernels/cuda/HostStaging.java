package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.Driver;

import java.lang.foreign.MemorySegment;

/**
 * Copies between device memory and Java heap memory through two pinned host buffers. Heap arrays
 * can move during garbage collection, so the driver never sees them: uploads copy a chunk into a
 * pinned buffer and queue its transfer while the other buffer fills (an event per buffer says when
 * it may be refilled); downloads go the other way, chunk by chunk. Native segments need none of
 * this and are copied directly by {@link CudaBackend}.
 */
final class HostStaging implements AutoCloseable {

    private static final long CHUNK = 8L << 20;

    private final MemorySegment stream;
    private final MemorySegment[] pinned = new MemorySegment[2];
    private final MemorySegment[] free = new MemorySegment[2];

    HostStaging(MemorySegment stream) {
        this.stream = stream;
    }

    private void allocate() {
        if (pinned[0] == null) {
            for (int i = 0; i < 2; i++) {
                pinned[i] = Driver.memHostAlloc(CHUNK);
                free[i] = Driver.eventCreate(Driver.EVENT_DISABLE_TIMING);
            }
        }
    }

    /** Queues {@code src} (heap memory) into device memory at {@code dst}; {@code src} may change once this returns. */
    void upload(long dst, MemorySegment src) {
        allocate();
        long size = src.byteSize();
        int k = 0;
        for (long off = 0; off < size; off += CHUNK, k ^= 1) {
            long len = Math.min(CHUNK, size - off);
            Driver.eventSynchronize(free[k]);  // its previous transfer has left the buffer
            MemorySegment.copy(src, off, pinned[k], 0, len);
            Driver.memcpyHtoDAsync(dst + off, pinned[k], len, stream);
            Driver.eventRecord(free[k], stream);
        }
    }

    /** Copies device memory at {@code src} into {@code dst} (heap memory), waiting for queued work first. */
    void download(MemorySegment dst, long src) {
        allocate();
        long size = dst.byteSize();
        for (long off = 0; off < size; off += CHUNK) {
            long len = Math.min(CHUNK, size - off);
            Driver.memcpyDtoHAsync(pinned[0], src + off, len, stream);
            Driver.streamSynchronize(stream);
            MemorySegment.copy(pinned[0], 0, dst, off, len);
        }
    }

    @Override
    public void close() {
        if (pinned[0] != null) {
            for (int i = 0; i < 2; i++) {
                Driver.eventDestroy(free[i]);
                Driver.memFreeHost(pinned[i]);
            }
            pinned[0] = null;
        }
    }
}
