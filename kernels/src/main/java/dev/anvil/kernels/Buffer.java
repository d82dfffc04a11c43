package dev.anvil.kernels;

/**
 * A run of elements in memory that a {@link Backend} owns: host memory for the CPU backend,
 * device memory for a GPU backend. Buffers are only ever created by their backend and passed back
 * to the same backend's ops.
 *
 * <p>A {@link #slice slice} is a view that shares its parent's memory; this is how one contiguous
 * parameter (or gradient) buffer is cut into named tensors. Closing a buffer that was allocated
 * frees its memory; closing a slice does nothing, as its parent owns the memory.
 */
public interface Buffer extends AutoCloseable {

    /** The element type. */
    DType dtype();

    /** Number of elements. */
    long length();

    /**
     * A view of {@code length} elements starting at element {@code offset} of this buffer.
     *
     * @throws IndexOutOfBoundsException if the range does not lie within this buffer
     */
    Buffer slice(long offset, long length);

    /** Frees the memory of an allocated buffer; a no-op for slices. */
    @Override
    void close();
}
