package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.Driver;

import java.lang.foreign.MemorySegment;

/**
 * Temporary device memory for the partial sums of multi-stage kernels. Ops on one stream run one
 * after another, so each op may use the whole of it; it only grows, after draining the stream so
 * that no queued kernel still reads the old block.
 */
final class DeviceScratch implements AutoCloseable {

    private final MemorySegment stream;
    private long pointer;
    private long bytes;

    DeviceScratch(MemorySegment stream) {
        this.stream = stream;
    }

    /** A device pointer to at least {@code need} bytes, valid until the next call. */
    long get(long need) {
        if (need > bytes) {
            Driver.streamSynchronize(stream);
            if (pointer != 0) {
                Driver.memFree(pointer);
                pointer = 0;
            }
            long grown = Math.max(need, Math.min(2 * bytes, need + (64L << 20)));
            pointer = Driver.memAlloc(grown);
            bytes = grown;
        }
        return pointer;
    }

    @Override
    public void close() {
        if (pointer != 0) {
            Driver.memFree(pointer);
            pointer = 0;
            bytes = 0;
        }
    }
}
