package dev.anvil.kernels;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * Allocation and host transfers of a backend. Host memory is described by {@link MemorySegment}s
 * holding elements in little-endian order, so heap arrays ({@code MemorySegment.ofArray}),
 * memory-mapped files and pinned buffers are all accepted.
 */
public interface DeviceMemory {

    /**
     * Allocates {@code length} elements of {@code dtype}, zero-filled.
     *
     * @throws UnsupportedOperationException if this backend cannot hold {@code dtype}
     */
    Buffer allocate(DType dtype, long length);

    /** Sets every element of {@code buffer} to zero. */
    void zero(Buffer buffer);

    /**
     * Copies {@code src} into {@code dst}; {@code src} must hold exactly
     * {@code dst.length() * dst.dtype().bytes()} bytes.
     */
    void upload(Buffer dst, MemorySegment src);

    /**
     * Copies {@code src} into host memory {@code dst}, which must hold exactly
     * {@code src.length() * src.dtype().bytes()} bytes. Waits for pending work on {@code src}.
     */
    void download(Buffer src, MemorySegment dst);

    /** Copies {@code src} into {@code dst} on the device; both must have the same type and length. */
    void copy(Buffer dst, Buffer src);

    /** Blocks until all work queued on this backend has finished. */
    void synchronize();

    /**
     * The buffer's memory as a host segment, readable from any thread, when this backend keeps
     * buffers in host memory (the CPU backend does), so that collectives work on it without a copy;
     * empty for device memory, which must be staged through {@link #download}/{@link #upload}.
     */
    default Optional<MemorySegment> hostView(Buffer buffer) {
        return Optional.empty();
    }
}
