package dev.anvil.kernels.cpu;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * A CPU backend buffer: a range of a Java array, so the Vector API reads it at full speed.
 * FP32 buffers are {@code float[]}, INT32 buffers are {@code int[]}. BF16 buffers are emulated:
 * they are {@code float[]} too, every stored value a bf16 value (the backend rounds each op's BF16
 * outputs), so the ops read them like FP32 and only host transfers see 2-byte elements.
 */
public final class CpuBuffer implements Buffer {

    private final DType dtype;
    final float[] f;
    final int[] i;
    final int offset;
    final int length;

    private CpuBuffer(DType dtype, float[] f, int[] i, int offset, int length) {
        this.dtype = dtype;
        this.f = f;
        this.i = i;
        this.offset = offset;
        this.length = length;
    }

    static CpuBuffer allocate(DType dtype, long length) {
        if (length < 0 || length > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("the CPU backend holds at most " + (Integer.MAX_VALUE - 16)
                    + " elements in one buffer, asked for " + length);
        }
        int n = (int) length;
        return switch (dtype) {
            case FP32, BF16 -> new CpuBuffer(dtype, new float[n], null, 0, n);
            case INT32 -> new CpuBuffer(dtype, null, new int[n], 0, n);
        };
    }

    /** Casts a buffer handed to the CPU backend, refusing buffers of other backends or types. */
    static CpuBuffer of(Buffer buffer, DType expected, String name) {
        Objects.requireNonNull(buffer, name);
        if (!(buffer instanceof CpuBuffer cpu)) {
            throw new IllegalArgumentException(name + " belongs to another backend: " + buffer.getClass().getName());
        }
        if (cpu.dtype != expected) {
            throw new IllegalArgumentException(name + " must be " + expected + ", is " + cpu.dtype);
        }
        return cpu;
    }

    /** {@link #of} for an FP32 buffer that must hold at least {@code need} elements. */
    static CpuBuffer f32(Buffer buffer, String name, long need) {
        return of(buffer, DType.FP32, name, need);
    }

    /** {@link #of} for a buffer of {@code expected} type that must hold at least {@code need} elements. */
    static CpuBuffer of(Buffer buffer, DType expected, String name, long need) {
        CpuBuffer cpu = of(buffer, expected, name);
        cpu.require(need, name);
        return cpu;
    }

    /** {@link #of} for an INT32 buffer that must hold at least {@code need} elements. */
    static CpuBuffer i32(Buffer buffer, String name, long need) {
        return of(buffer, DType.INT32, name, need);
    }

    private void require(long need, String name) {
        if (length < need) {
            throw new IllegalArgumentException(name + " holds " + length + " elements, the op needs " + need);
        }
    }

    /**
     * The backing float array (FP32, and BF16 whose values it holds widened); element 0 of this
     * buffer is at {@link #offset()}.
     */
    public float[] floats() {
        return f;
    }

    /** The backing int array (INT32 only); element 0 of this buffer is at {@link #offset()}. */
    public int[] ints() {
        return i;
    }

    /** Index of this buffer's first element in its backing array. */
    public int offset() {
        return offset;
    }

    /**
     * A segment over exactly this buffer's storage, sharing its memory: 4 bytes per element, as
     * BF16 buffers are stored widened to floats.
     */
    public MemorySegment segment() {
        MemorySegment whole = f != null ? MemorySegment.ofArray(f) : MemorySegment.ofArray(i);
        return whole.asSlice((long) offset * Float.BYTES, (long) length * Float.BYTES);
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
    public CpuBuffer slice(long offset, long length) {
        Objects.checkFromIndexSize(offset, length, this.length);
        return new CpuBuffer(dtype, f, i, this.offset + (int) offset, (int) length);
    }

    @Override
    public void close() {
        // heap arrays are freed by the garbage collector once unreachable
    }

    @Override
    public String toString() {
        return "CpuBuffer[" + dtype + " x " + length + "]";
    }
}
