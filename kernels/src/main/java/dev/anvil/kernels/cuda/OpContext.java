package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;

/**
 * What every op family of the CUDA backend shares: the backend whose buffers it accepts, the loaded
 * kernels, the launcher of its stream, scratch memory and the device's error flag, plus the shape
 * helpers their launches have in common. One per backend; used from one thread at a time, as the
 * backend is.
 */
final class OpContext {

    /** Threads per block of the grid-stride and one-warp-per-row kernels. */
    static final int THREADS = 256;
    /** Rows summed per block in the two-stage column sums; enough blocks to fill the GPU. */
    private static final int MAX_CHUNKS = 128;

    final CudaBackend backend;
    final CudaKernels kernels;
    final KernelLauncher launcher;
    final DeviceScratch scratch;
    /** Device address of the {code, position, value} error record kernels report bad inputs into. */
    final long errorFlag;
    final int smCount;
    /** Shared memory a block may opt in to, in bytes. */
    final int maxSharedBytes;

    OpContext(CudaBackend backend, CudaKernels kernels, KernelLauncher launcher, DeviceScratch scratch,
              long errorFlag, int smCount, int maxSharedBytes) {
        this.backend = backend;
        this.kernels = kernels;
        this.launcher = launcher;
        this.scratch = scratch;
        this.errorFlag = errorFlag;
        this.smCount = smCount;
        this.maxSharedBytes = maxSharedBytes;
    }

    /** Starts a launch of {@code kernel}: {@code launch(k).ptr(out).i32(n).launch(blocks, threads)}. */
    KernelLauncher launch(MemorySegment kernel) {
        return launcher.begin(kernel);
    }

    /** {@code b} as this backend's buffer of {@code dtype} with at least {@code need} elements. */
    CudaBuffer buf(Buffer b, DType dtype, String name, long need) {
        return CudaBuffer.of(backend, b, dtype, name, need);
    }

    /** The storage type of an op, taken from its output: FP32 or BF16. */
    DType floatType(Buffer b, String name) {
        DType t = CudaBuffer.of(backend, b, name).dtype();
        if (t == DType.INT32) {
            throw new IllegalArgumentException(name + " must be FP32 or BF16, is INT32");
        }
        return t;
    }

    /** Blocks for a grid-stride kernel over {@code n} elements: enough to fill the GPU, at least one. */
    int grid(long n) {
        long blocks = (n + THREADS - 1) / THREADS;
        return (int) Math.max(1, Math.min(blocks, 32L * smCount));
    }

    /** Blocks for one warp per row. */
    static int rowBlocks(int rows) {
        return Math.max(1, (rows + THREADS / 32 - 1) / (THREADS / 32));
    }

    /** Blocks for one thread per column. */
    static int columnBlocks(int columns) {
        return Math.max(1, (columns + THREADS - 1) / THREADS);
    }

    /** Rows per chunk of a two-stage column sum over {@code rows} rows. */
    static int rowsPerChunk(int rows) {
        return Math.max(1, (rows + MAX_CHUNKS - 1) / MAX_CHUNKS);
    }

    /** Chunks of a two-stage column sum over {@code rows} rows. */
    static int chunks(int rows) {
        int per = rowsPerChunk(rows);
        return (rows + per - 1) / per;
    }
}
