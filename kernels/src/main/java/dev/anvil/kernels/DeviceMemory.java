package dev.anvil.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

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

    /**
     * {@code bytes} of host memory that {@link #downloadAsync} copies into without the caller
     * waiting: page-locked on a GPU backend. It lives until {@link #freeHost} or until the backend
     * closes. The default is ordinary native memory, freed when unreachable.
     */
    default MemorySegment allocateHost(long bytes) {
        return Arena.ofAuto().allocate(bytes, 64);
    }

    /** Frees memory from {@link #allocateHost}; other segments are ignored. */
    default void freeHost(MemorySegment host) {
    }

    /**
     * Queues a copy of {@code src} into host memory {@code dst} (of exactly its bytes) behind the work
     * queued so far, and returns at once: the future completes when {@code dst} holds the values.
     * The caller must not read {@code dst} before, nor let queued ops change {@code src} first (ops
     * queued afterwards may: the copy is ordered before them). A GPU backend copies on a stream of
     * its own, without waiting on its compute stream, into memory from {@link #allocateHost}; into
     * other memory, and on the CPU backend, this is {@link #download}, complete on return.
     */
    default CompletableFuture<Void> downloadAsync(Buffer src, MemorySegment dst) {
        download(src, dst);
        return CompletableFuture.completedFuture(null);
    }
}
