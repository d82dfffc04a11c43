package dev.anvil.kernels.cpu;

/**
 * Single-precision matrix product {@code C (+)= A · B} for strided operands, so that
 * {@code A·Bᵀ}, {@code A·B} and {@code Aᵀ·B} are all the same call with different strides.
 *
 * <p>It follows the BLIS scheme, cut into blocks of {@code kc} steps of the shared dimension by
 * {@code nc} columns ({@link GemmBlocking}, sized from the machine's caches). Each block's B is
 * packed into panels shared by all threads; its compute is a set of tasks of at most {@code mc}
 * rows of C (and, when rows are too few to feed every thread, a share of the column panels), each
 * sweeping the {@link MicroKernel} over its tiles column panel by column panel, so that a B
 * micro-panel stays in L1 while the task's A block streams from L2. A task packs its rows of A
 * itself, or, where B is cut into several column blocks and A is small enough, all of A is
 * packed once per step block and shared, rather than again for every column block.
 *
 * <p>Packing overlaps compute: one parallel loop runs each block, its compute tasks first and then
 * the packing of the next block's operands into the other half of a double buffer, so a thread
 * done with its tasks packs while the others finish theirs, and each block costs one wait for the
 * slowest thread, not two.
 *
 * <p>Every element of C is one chain of fused multiply-adds in step order (see
 * {@link MicroKernel}), computed by one task: the result is bit-identical run to run, for any
 * number of threads and any blocking.
 *
 * <p>One multiply runs at a time (like the {@link WorkerPool} it runs on): the packed panels and
 * the operands of the multiply in progress are fields, so a call allocates nothing once the
 * buffers have grown to its shapes.
 */
final class Gemm {

    private final WorkerPool pool;
    private final MicroKernel kernel;
    /** Whether packing may use the Vector API: the kernel does, so it is available. */
    private final boolean simd;
    private final int mr;
    private final int nr;
    private final GemmBlocking blocking;
    private final ThreadLocal<Scratch> scratch;
    private final WorkerPool.Range runPhase = this::runPhase;
    /** Shared packed A and B, double-buffered: one half is computed with while the other is packed. */
    private final float[][] packedA = {new float[0], new float[0]};
    private final float[][] packedB = {new float[0], new float[0]};

    // The multiply in progress, read by the parallel loops' bodies.
    private float[] a, b, c;
    private int aOff, aRowStride, aColStride, bOff, bRowStride, bColStride, cOff, ldc;
    private int m, n, k;
    private boolean accumulate;
    /** Steps per block in this multiply (the last block may have fewer), see {@link GemmBlocking#stepsPerBlock}. */
    private int kcRun;
    /** Blocks of steps and of columns; block {@code i} is step block {@code i / nBlocks}, column block {@code i % nBlocks}. */
    private int nBlocks;
    private boolean sharedA;
    private int microPanels, rowBlocks, parts;
    // The phase in progress: compute tasks of block `block` (none if -1), then packing for `block + 1`.
    private int block, tasks, packAItems, packBItems;

    /** A thread's packed A block and a tile to compute ragged edges into. */
    private static final class Scratch {
        final float[] a;
        final float[] tile;

        Scratch(int mr, int nr, GemmBlocking blocking) {
            a = new float[ceil(blocking.mc(), mr) * mr * blocking.maxKc()];
            tile = new float[mr * nr];
        }
    }

    /** A product on {@code pool} with {@code kernel}, blocked for this machine's caches. */
    Gemm(WorkerPool pool, MicroKernel kernel) {
        this(pool, kernel, GemmBlocking.of(CacheSizes.detected(), kernel.mr(), kernel.nr()));
    }

    Gemm(WorkerPool pool, MicroKernel kernel, GemmBlocking blocking) {
        this.pool = pool;
        this.kernel = kernel;
        this.simd = !(kernel instanceof ScalarMicroKernel);
        this.mr = kernel.mr();
        this.nr = kernel.nr();
        this.blocking = blocking;
        this.scratch = ThreadLocal.withInitial(() -> new Scratch(mr, nr, blocking));
    }

    /**
     * {@code C[i, j] (+)= Σ_p A[i, p] · B[p, j]} for {@code i < m, j < n, p < k}, where
     * {@code A[i, p] = a[aOff + i·aRowStride + p·aColStride]},
     * {@code B[p, j] = b[bOff + p·bRowStride + j·bColStride]} and C is row-major with row stride
     * {@code ldc}. Adds to C when {@code accumulate}, overwrites it otherwise.
     */
    void multiply(int m, int n, int k,
                  float[] a, int aOff, int aRowStride, int aColStride,
                  float[] b, int bOff, int bRowStride, int bColStride,
                  float[] c, int cOff, int ldc, boolean accumulate) {
        if (m <= 0 || n <= 0) {
            return;
        }
        if (k <= 0) {
            if (!accumulate) {
                for (int i = 0; i < m; i++) {
                    java.util.Arrays.fill(c, cOff + i * ldc, cOff + i * ldc + n, 0f);
                }
            }
            return;
        }
        this.a = a;
        this.aOff = aOff;
        this.aRowStride = aRowStride;
        this.aColStride = aColStride;
        this.b = b;
        this.bOff = bOff;
        this.bRowStride = bRowStride;
        this.bColStride = bColStride;
        this.c = c;
        this.cOff = cOff;
        this.ldc = ldc;
        this.m = m;
        this.n = n;
        this.k = k;
        this.accumulate = accumulate;
        int threads = pool.threads();
        int nc = blocking.nc();
        kcRun = blocking.stepsPerBlock(k);
        int kc = kcRun;
        nBlocks = ceil(n, nc);
        int blocks = ceil(k, kc) * nBlocks;
        microPanels = ceil(m, mr);
        // Row blocks: a multiple of the thread count where rows allow, so the threads finish together.
        rowBlocks = Math.min(ceil(ceil(m, blocking.mc()), threads) * threads, microPanels);
        // Too few row blocks for four tasks per thread: share the column panels out too.
        parts = Math.min(ceil(Math.min(n, nc), nr), ceil(4 * threads, rowBlocks));
        long aFloats = (long) microPanels * mr * Math.min(k, kc);
        // A is shared when more than one task would read the same rows: several column blocks, or
        // a row block's columns split into parts (else each part would pack the rows again).
        sharedA = (nBlocks > 1 || parts > 1) && aFloats <= blocking.sharedAFloats();
        grow(packedB, ceil(Math.min(n, nc), nr) * nr * Math.min(k, kc));
        if (sharedA) {
            grow(packedA, (int) aFloats);
        }
        try {
            for (block = -1; block < blocks; block++) {
                tasks = block < 0 ? 0 : rowBlocks * parts;
                int next = block + 1;
                boolean newSteps = next < blocks && next % nBlocks == 0;
                packAItems = sharedA && newSteps ? rowBlocks : 0;
                packBItems = next < blocks ? ceil(columns(next), nr) : 0;
                pool.forEach(tasks + packAItems + packBItems, 1, runPhase);
            }
        } finally {
            this.a = this.b = this.c = null;
        }
    }

    private static void grow(float[][] halves, int floats) {
        for (int h = 0; h < 2; h++) {
            if (halves[h].length < floats) {
                halves[h] = new float[floats];
            }
        }
    }

    private int steps(int blk) {
        return Math.min(kcRun, k - stepStart(blk));
    }

    private int stepStart(int blk) {
        return blk / nBlocks * kcRun;
    }

    private int columnStart(int blk) {
        return blk % nBlocks * blocking.nc();
    }

    private int columns(int blk) {
        return Math.min(blocking.nc(), n - columnStart(blk));
    }

    /** First micro-panel of row block {@code r}: the micro-panels are shared out as evenly as can be. */
    private int firstPanel(int r) {
        return (int) ((long) r * microPanels / rowBlocks);
    }

    private void runPhase(int start, int end) {
        for (int item = start; item < end; item++) {
            if (item < tasks) {
                compute(item);
            } else if (item < tasks + packAItems) {
                packA(block + 1, item - tasks);
            } else {
                packB(block + 1, item - tasks - packAItems);
            }
        }
    }

    /** Packs row block {@code r} of A's steps for {@code blk} into the shared A. */
    private void packA(int blk, int r) {
        int p0 = firstPanel(r), p1 = firstPanel(r + 1), kc = steps(blk);
        GemmPacking.pack(simd, a, aOff, aRowStride, aColStride, p0 * mr, Math.min(p1 * mr, m) - p0 * mr,
                stepStart(blk), kc, mr, packedA[blk / nBlocks % 2], p0 * mr * kc);
    }

    /** Packs panel {@code q} of B's block {@code blk} (B is packed as Bᵀ: its rows are B's columns). */
    private void packB(int blk, int q) {
        int j = q * nr, kc = steps(blk);
        GemmPacking.pack(simd, b, bOff, bColStride, bRowStride, columnStart(blk) + j, Math.min(nr, columns(blk) - j),
                stepStart(blk), kc, nr, packedB[blk % 2], j * kc);
    }

    private void compute(int task) {
        int blk = block, kc = steps(blk), pc = stepStart(blk), jc = columnStart(blk), nc = columns(blk);
        int r = task / parts, p0 = firstPanel(r), i0 = p0 * mr;
        int rows = Math.min(firstPanel(r + 1) * mr, m) - i0;
        int panels = ceil(nc, nr), perPart = ceil(panels, parts);
        int q0 = task % parts * perPart, q1 = Math.min(panels, q0 + perPart);
        if (rows <= 0 || q0 >= q1) {
            return;
        }
        Scratch s = scratch.get();
        float[] pa;
        int aBase;
        if (sharedA) {
            pa = packedA[blk / nBlocks % 2];
            aBase = i0 * kc;
        } else {
            pa = s.a;
            aBase = 0;
            GemmPacking.pack(simd, a, aOff, aRowStride, aColStride, i0, rows, pc, kc, mr, pa, 0);
        }
        float[] pb = packedB[blk % 2];
        // The first block of an overwriting product starts its chains from zero, every other from C.
        boolean load = accumulate || pc > 0;
        for (int q = q0; q < q1; q++) {
            int j = q * nr;
            int cols = Math.min(nr, nc - j);
            int bp = j * kc;
            for (int i = 0; i < rows; i += mr) {
                int h = Math.min(mr, rows - i);
                int ci = cOff + (i0 + i) * ldc + jc + j;
                if (h == mr && cols == nr) {
                    kernel.multiply(kc, pa, aBase + i * kc, pb, bp, c, ci, ldc, load);
                } else {
                    edge(s.tile, h, cols, ci, load, true);
                    kernel.multiply(kc, pa, aBase + i * kc, pb, bp, s.tile, 0, nr, load);
                    edge(s.tile, h, cols, ci, load, false);
                }
            }
        }
    }

    /**
     * Moves the valid {@code h × cols} corner of a ragged tile between C and the scratch tile: into
     * the tile before the kernel runs (when it starts from C), back into C after.
     */
    private void edge(float[] tile, int h, int cols, int ci, boolean load, boolean in) {
        if (in && !load) {
            return;
        }
        for (int r = 0; r < h; r++) {
            if (in) {
                System.arraycopy(c, ci + r * ldc, tile, r * nr, cols);
            } else {
                System.arraycopy(tile, r * nr, c, ci + r * ldc, cols);
            }
        }
    }

    private static int ceil(int x, int y) {
        return (x + y - 1) / y;
    }
}
