package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cuda.driver.Driver;

import java.util.Objects;

/**
 * A CUDA backend buffer: a device pointer, its element type and length. A slice is the parent's
 * pointer plus an offset and frees nothing; the allocation it came from owns the memory.
 */
public final class CudaBuffer implements Buffer {

    private final CudaBackend owner;
    private final DType dtype;
    private final long pointer;
    private final long length;
    private final boolean allocation;
    private boolean closed;

    private CudaBuffer(CudaBackend owner, DType dtype, long pointer, long length, boolean allocation) {
        this.owner = owner;
        this.dtype = dtype;
        this.pointer = pointer;
        this.length = length;
        this.allocation = allocation;
    }

    static CudaBuffer allocate(CudaBackend owner, DType dtype, long length) {
        if (length < 0) {
            throw new IllegalArgumentException("negative length " + length);
        }
        // cuMemAlloc refuses 0 bytes; an empty buffer still gets a valid, unused pointer.
        long pointer = Driver.memAlloc(Math.max(1, length) * dtype.bytes());
        return new CudaBuffer(owner, dtype, pointer, length, true);
    }

    /** Casts a buffer handed to {@code backend}, refusing buffers of other backends or types. */
    static CudaBuffer of(CudaBackend backend, Buffer buffer, DType expected, String name, long need) {
        CudaBuffer b = of(backend, buffer, name);
        if (b.dtype != expected) {
            throw new IllegalArgumentException(name + " must be " + expected + ", is " + b.dtype);
        }
        if (b.length < need) {
            throw new IllegalArgumentException(name + " holds " + b.length + " elements, the op needs " + need);
        }
        return b;
    }

    /** Casts a buffer handed to {@code backend}, whatever its type. */
    static CudaBuffer of(CudaBackend backend, Buffer buffer, String name) {
        Objects.requireNonNull(buffer, name);
        if (!(buffer instanceof CudaBuffer b) || b.owner != backend) {
            throw new IllegalArgumentException(name + " belongs to another backend: " + buffer);
        }
        if (b.closed) {
            throw new IllegalStateException(name + " was closed");
        }
        return b;
    }

    /** Device address of element 0. */
    public long pointer() {
        return pointer;
    }

    /** Size in bytes. */
    public long bytes() {
        return length * dtype.bytes();
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public CudaBuffer slice(long offset, long length) {
        Objects.checkFromIndexSize(offset, length, this.length);
        return new CudaBuffer(owner, dtype, pointer + offset * dtype.bytes(), length, false);
    }

    /** Frees the device memory of an allocation (queued work on it must be done); a no-op for slices. */
    @Override
    public void close() {
        if (allocation && !closed) {
            closed = true;
            owner.free(this);
        }
    }

    @Override
    public String toString() {
        return "CudaBuffer[" + dtype + " x " + length + " @0x" + Long.toHexString(pointer) + "]";
    }
}
