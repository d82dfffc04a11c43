package dev.anvil.kernels.cpu;

/**
 * Single-precision matrix product {@code C (+)= A · B} for strided operands, so that
 * {@code A·Bᵀ}, {@code A·B} and {@code Aᵀ·B} are all the same call with different strides.
 *
 * <p>It follows the BLIS scheme, cut into blocks of {@code kc} steps of the shared dimension by
 * {@code nc} columns ({@link GemmBlocking}, sized from the machine's caches). The steps' blocks run
 * one after the other, each as one parallel loop of tasks: at most {@code mc} rows of C in one block
 * of columns (and, when rows are too few to feed every thread, a share of its column panels), each
 * sweeping the {@link MicroKernel} over its tiles column panel by column panel, so that a B
 * micro-panel stays in L1 while the task's A block streams from L2. Where C is too big for the
 * caches and its rows lie pages apart, the tiles go row by row instead: the next tile down a panel
 * would meet twelve rows the hardware has not fetched, the next one along the row continues
 * twelve streams it prefetches (the LM head's logits: 8-11% faster).
 *
 * <p>Each thread packs the B panels it reads into its own buffer, once per block, and keeps them
 * for its next tasks in that block: no packed line is written by one core and read by another,
 * and no thread waits for another's packing. The {@link WorkerPool} gives each thread the same
 * range of tasks in every block, so a thread's rows of C stay in its core's cache from one block
 * of steps to the next. A task packs its rows of A itself, or, where several tasks read the same
 * rows and A is small enough, all of A is packed once per step block and shared: by the tasks of
 * the block before, as they finish, into the other half of a double buffer.
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

    /** Floats in a 4 KiB page: the hardware prefetchers follow a stream within a page, not across. */
    private static final int PAGE_FLOATS = 4096 / Float.BYTES;

    private final WorkerPool pool;
    private final MicroKernel kernel;
    /** Whether packing may use the Vector API: the kernel does, so it is available. */
    private final boolean simd;
    private final int mr;
    private final int nr;
    private final GemmBlocking blocking;
    private final ThreadLocal<Scratch> scratch;
    private final WorkerPool.Range runPhase = this::runPhase;
    /** Shared packed A, double-buffered: one half is computed with while the other is packed. */
    private final float[][] packedA = {new float[0], new float[0]};
    /**
     * Names the blocks of B a thread may hold packed: block {@code (s, j)} (step block {@code s},
     * column block {@code j}) of the multiply in progress is generation
     * {@code generation + s·nBlocks + j}, so no packed panel outlives its block, or its multiply.
     */
    private long generation;

    // The multiply in progress, read by the parallel loops' bodies.
    private float[] a, b, c;
    private int aOff, aRowStride, aColStride, bOff, bRowStride, bColStride, cOff, ldc;
    private int m, n, k;
    private boolean accumulate;
    /** Steps per block in this multiply (the last block may have fewer), see {@link GemmBlocking#stepsPerBlock}. */
    private int kcRun;
    /** Blocks of columns, each {@code ncRun} wide but the last. */
    private int nBlocks, ncRun;
    private boolean sharedA;
    /** Whether C exceeds the threads' caches with rows pages apart, so tasks run their tiles row by row. */
    private boolean streamC;
    private int microPanels, rowBlocks, parts;
    // The phase in progress: compute tasks of step block `stepBlock` (none if -1), then packing A for the next.
    private int stepBlock, tasks, packAItems;

    /** A thread's packed A block, its packed B panels, and a tile for ragged edges. */
    private static final class Scratch {
        final float[] a;
        final float[] tile;
        float[] b = new float[0];
        /** At a part's first panel: the generation whose panels of that part {@code b} holds. */
        final long[] stamp;

        Scratch(int mr, int nr, GemmBlocking blocking) {
            a = new float[ceil(blocking.mc(), mr) * mr * blocking.maxKc()];
            tile = new float[mr * nr];
            stamp = new long[ceil(blocking.nc(), nr)];
            java.util.Arrays.fill(stamp, -1);
        }

        /** Room for {@code floats} of packed B; growing forgets every panel held. */
        void reserveB(int floats) {
            if (b.length < floats) {
                b = new float[floats];
                java.util.Arrays.fill(stamp, -1);
            }
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
        kcRun = blocking.stepsPerBlock(k);
        int stepBlocks = ceil(k, kcRun);
        nBlocks = ceil(n, blocking.nc());
        if (nBlocks > 1) {
            // A multiple of the thread count, so that each thread's range of tasks is whole column
            // blocks and no two threads pack the same panels of B.
            nBlocks = ceil(nBlocks, threads) * threads;
        }
        // Column blocks as even as whole panels allow, so that equal shares of tasks are equal work.
        ncRun = ceil(ceil(n, nBlocks), nr) * nr;
        nBlocks = ceil(n, ncRun);
        int nc = ncRun;
        microPanels = ceil(m, mr);
        // Row blocks: a multiple of the thread count where rows allow, so the threads finish together.
        rowBlocks = Math.min(ceil(ceil(m, blocking.mc()), threads) * threads, microPanels);
        // Too few row blocks for two tasks per thread: share the column panels out too. (Four, as
        // before, cut the weight gradient's 384 rows into more parts than it gains: 2% slower.)
        parts = Math.min(ceil(Math.min(n, nc), nr), ceil(2 * threads, rowBlocks));
        long aFloats = (long) microPanels * mr * Math.min(k, kcRun);
        // A is shared when more than one task would read the same rows: several column blocks, or
        // a row block's columns split into parts (else each part would pack the rows again).
        sharedA = (nBlocks > 1 || parts > 1) && aFloats <= blocking.sharedAFloats();
        streamC = (long) m * n > blocking.residentCFloats() * threads && ldc > PAGE_FLOATS;
        if (sharedA) {
            grow(packedA, (int) aFloats);
        }
        try {
            for (stepBlock = sharedA ? -1 : 0; stepBlock < stepBlocks; stepBlock++) {
                tasks = stepBlock < 0 ? 0 : nBlocks * rowBlocks * parts;
                packAItems = sharedA && stepBlock + 1 < stepBlocks ? rowBlocks : 0;
                pool.forEach(tasks + packAItems, 1, runPhase);
            }
        } finally {
            generation += (long) stepBlocks * nBlocks;
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

    private int steps(int sb) {
        return Math.min(kcRun, k - sb * kcRun);
    }

    /** First micro-panel of row block {@code r}: the micro-panels are shared out as evenly as can be. */
    private int firstPanel(int r) {
        return (int) ((long) r * microPanels / rowBlocks);
    }

    /**
     * Runs items {@code [start, end)} of a phase. The items are the compute tasks and the packing of
     * A interleaved in one segment per thread (its share of the tasks, then its share of the
     * packing), so that the range of items the pool gives thread {@code t} holds the same tasks, the
     * same rows of C, in every phase (up to an item at either end where the counts do not divide
     * evenly), whether or not A is packed beside them.
     */
    private void runPhase(int start, int end) {
        int threads = pool.threads();
        for (int item = start; item < end; item++) {
            int t = 0;
            while (t + 1 < threads && item >= segment(t + 1, threads)) {
                t++;
            }
            int i = item - segment(t, threads), ownTasks = share(tasks, t + 1, threads) - share(tasks, t, threads);
            if (i < ownTasks) {
                compute(share(tasks, t, threads) + i);
            } else {
                packA(stepBlock + 1, share(packAItems, t, threads) + i - ownTasks);
            }
        }
    }

    /** First item of thread {@code t}'s segment. */
    private int segment(int t, int threads) {
        return share(tasks, t, threads) + share(packAItems, t, threads);
    }

    /** Where thread {@code t}'s share of {@code items} starts. */
    private static int share(int items, int t, int threads) {
        return (int) ((long) items * t / threads);
    }

    /** Packs row block {@code r} of A's steps for step block {@code sb} into the shared A. */
    private void packA(int sb, int r) {
        int p0 = firstPanel(r), p1 = firstPanel(r + 1), kc = steps(sb);
        GemmPacking.pack(simd, a, aOff, aRowStride, aColStride, p0 * mr, Math.min(p1 * mr, m) - p0 * mr,
                sb * kcRun, kc, mr, packedA[sb % 2], p0 * mr * kc);
    }

    /**
     * Task {@code task} of the step block in progress: row block {@code r}'s tiles in part
     * {@code part} of column block {@code jb}'s panels, panel by panel. The part's B panels are
     * packed into the thread's own buffer by the first of its tasks to need them and kept for the
     * rest.
     */
    private void compute(int task) {
        int sb = stepBlock, kc = steps(sb), pc = sb * kcRun;
        // Tasks run column block by column block, row block by row block, part by part: a thread's
        // range of tasks is then whole row blocks, with one column block the very rows of the shared
        // A it packed itself (see runPhase).
        int perBlock = rowBlocks * parts, jb = task / perBlock, r = task % perBlock / parts, part = task % parts;
        int jc = jb * ncRun, nc = Math.min(ncRun, n - jc);
        int p0 = firstPanel(r), i0 = p0 * mr;
        int rows = Math.min(firstPanel(r + 1) * mr, m) - i0;
        int panels = ceil(nc, nr), perPart = ceil(panels, parts);
        int q0 = part * perPart, q1 = Math.min(panels, q0 + perPart);
        if (rows <= 0 || q0 >= q1) {
            return;
        }
        Scratch s = scratch.get();
        float[] pa;
        int aBase;
        if (sharedA) {
            pa = packedA[sb % 2];
            aBase = i0 * kc;
        } else {
            pa = s.a;
            aBase = 0;
            GemmPacking.pack(simd, a, aOff, aRowStride, aColStride, i0, rows, pc, kc, mr, pa, 0);
        }
        s.reserveB(panels * nr * kcRun);
        float[] pb = s.b;
        long held = generation + (long) sb * nBlocks + jb;
        // The first block of an overwriting product starts its chains from zero, every other from C.
        boolean load = accumulate || pc > 0;
        if (s.stamp[q0] != held) {
            // B is packed as Bᵀ (its rows are B's columns), all of this part's panels at once. Tasks of
            // one part cover the same panels, so the thread holds all of them or none: the part's first
            // panel stands for them all.
            GemmPacking.pack(simd, b, bOff, bColStride, bRowStride, jc + q0 * nr, Math.min(nc, q1 * nr) - q0 * nr,
                    pc, kc, nr, pb, q0 * nr * kc);
            s.stamp[q0] = held;
        }
        int ci = cOff + i0 * ldc + jc;
        if (streamC) {
            for (int i = 0; i < rows; i += mr) {
                for (int q = q0; q < q1; q++) {
                    tile(s.tile, kc, pa, aBase + i * kc, pb, q * nr * kc, Math.min(mr, rows - i),
                            Math.min(nr, nc - q * nr), ci + i * ldc + q * nr, load);
                }
            }
        } else {
            for (int q = q0; q < q1; q++) {
                for (int i = 0; i < rows; i += mr) {
                    tile(s.tile, kc, pa, aBase + i * kc, pb, q * nr * kc, Math.min(mr, rows - i),
                            Math.min(nr, nc - q * nr), ci + i * ldc + q * nr, load);
                }
            }
        }
    }

    /**
     * The {@code h × cols} tile of C at {@code ci} from A's micro-panel at {@code ap} and B's at
     * {@code bp}: straight into C when whole, through the scratch {@code tile} at a ragged edge.
     */
    private void tile(float[] tile, int kc, float[] pa, int ap, float[] pb, int bp, int h, int cols, int ci,
                      boolean load) {
        if (h == mr && cols == nr) {
            kernel.multiply(kc, pa, ap, pb, bp, c, ci, ldc, load);
        } else {
            edge(tile, h, cols, ci, load, true);
            kernel.multiply(kc, pa, ap, pb, bp, tile, 0, nr, load);
            edge(tile, h, cols, ci, load, false);
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
