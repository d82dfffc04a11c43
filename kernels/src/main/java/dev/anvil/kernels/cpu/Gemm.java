package dev.anvil.kernels.cpu;

/**
 * Single-precision matrix product {@code C (+)= A · B} for strided operands, so that
 * {@code A·Bᵀ}, {@code A·B} and {@code Aᵀ·B} are all the same call with different strides.
 *
 * <p>It follows the BLIS scheme. For each block of {@code NC} columns and a chunk of the shared
 * dimension, B is packed once into panels shared by all threads (a parallel loop), then a second
 * parallel loop runs over tasks of at most {@code MC} rows of C (and, when rows are too few to feed
 * every thread, a share of the column panels). For each {@code KC} steps of the chunk a task packs
 * its rows of A into its thread's scratch and sweeps the {@link MicroKernel} over its tiles,
 * column panel by column panel, so that a B micro-panel stays in L1 while the A block streams from
 * L2. A chunk is one {@code KC} block for wide B, several when B is narrow (the {@code dinp}
 * product's long, thin weight), so the pair of parallel loops, each ending in a wait for the
 * slowest thread, runs as few times as the shared panel's {@code KC × NC} floats allow.
 *
 * <p>Every element of C is computed by one task, summing its {@code KC}-step blocks in order, and
 * {@code KC} is fixed: the result is bit-identical run to run and for any number of threads.
 *
 * <p>One multiply runs at a time (like the {@link WorkerPool} it runs on): the shared B panel and
 * the operands of the multiply in progress are fields, so a call allocates nothing once the
 * scratch has grown to its shapes.
 */
final class Gemm {

    /**
     * Steps of the shared dimension per block: a B micro-panel of KC × nr floats fits L1, and as
     * the model's channel counts (384, 768) are multiples, C is read and written few times.
     */
    static final int KC = 384;
    /** Rows of A a task packs at most: MC × KC floats sit in L2 beside the B micro-panels. */
    private static final int MC = 96;
    /** Columns of B packed at once: KC × NC floats (3 MiB) stay in L3, shared by the threads. */
    private static final int NC = 2048;

    private final WorkerPool pool;
    private final MicroKernel kernel;
    private final int mr;
    private final int nr;
    private final ThreadLocal<Scratch> scratch;
    private final WorkerPool.Range packBPanels = this::packBPanels;
    private final WorkerPool.Range runTasks = this::runTasks;
    private float[] packedB = new float[0];

    // The multiply in progress, read by the parallel loops' bodies.
    private float[] a, b, c;
    private int aOff, aRowStride, aColStride, bOff, bRowStride, bColStride, cOff, ldc;
    private int m, mc, parts, panelsPerPart;
    private int jc, nc, panels, pc, depth;
    private boolean accumulate;

    /** A thread's packed A block and a tile to compute ragged edges into. */
    private static final class Scratch {
        final float[] a;
        final float[] tile;

        Scratch(int mr, int nr) {
            a = new float[ceil(MC, mr) * mr * KC];
            tile = new float[mr * nr];
        }
    }

    Gemm(WorkerPool pool, MicroKernel kernel) {
        this.pool = pool;
        this.kernel = kernel;
        this.mr = kernel.mr();
        this.nr = kernel.nr();
        this.scratch = ThreadLocal.withInitial(() -> new Scratch(mr, nr));
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
        this.accumulate = accumulate;
        int threads = pool.threads();
        // Row blocks: a multiple of the thread count where rows allow, so the threads finish together.
        int blocks = Math.min(ceil(ceil(m, MC), threads) * threads, ceil(m, mr));
        this.mc = ceil(ceil(m, blocks), mr) * mr;
        int rowBlocks = ceil(m, mc);
        try {
            for (jc = 0; jc < n; jc += NC) {
                nc = Math.min(NC, n - jc);
                panels = ceil(nc, nr);
                // Too few row blocks for four tasks per thread: share the column panels out too.
                parts = Math.min(panels, ceil(4 * threads, rowBlocks));
                panelsPerPart = ceil(panels, parts);
                parts = ceil(panels, panelsPerPart);
                int chunk = KC * Math.max(1, NC / (panels * nr));
                for (pc = 0; pc < k; pc += chunk) {
                    depth = Math.min(chunk, k - pc);
                    if (packedB.length < panels * nr * depth) {
                        packedB = new float[ceil(NC, nr) * nr * KC];
                    }
                    pool.forEach(panels, packBPanels);
                    pool.forEach(rowBlocks * parts, 1, runTasks);
                }
            }
        } finally {
            this.a = this.b = this.c = null;
        }
    }

    private void packBPanels(int start, int end) {
        int j = start * nr;
        // B is packed as Bᵀ: its rows are B's columns.
        GemmPacking.pack(b, bOff, bColStride, bRowStride, jc + j, Math.min(end * nr, nc) - j, pc, depth, nr,
                packedB, j * depth);
    }

    private void runTasks(int start, int end) {
        Scratch s = scratch.get();
        for (int t = start; t < end; t++) {
            int i0 = (t / parts) * mc;
            int rows = Math.min(mc, m - i0);
            int q0 = (t % parts) * panelsPerPart;
            int q1 = Math.min(panels, q0 + panelsPerPart);
            for (int p = 0; p < depth; p += KC) {
                int kc = Math.min(KC, depth - p);
                boolean add = accumulate || pc + p > 0;
                GemmPacking.pack(a, aOff, aRowStride, aColStride, i0, rows, pc + p, kc, mr, s.a, 0);
                for (int q = q0; q < q1; q++) {
                    int j = q * nr;
                    int cols = Math.min(nr, nc - j);
                    // Panel q holds `depth` steps of nr values; this block starts p steps in.
                    int bp = j * depth + p * nr;
                    for (int i = 0; i < rows; i += mr) {
                        int h = Math.min(mr, rows - i);
                        int ci = cOff + (i0 + i) * ldc + jc + j;
                        if (h == mr && cols == nr) {
                            kernel.multiply(kc, s.a, i * kc, packedB, bp, c, ci, ldc, add);
                        } else {
                            kernel.multiply(kc, s.a, i * kc, packedB, bp, s.tile, 0, nr, false);
                            addEdge(s.tile, h, cols, ci, add);
                        }
                    }
                }
            }
        }
    }

    /** Moves the valid {@code h × cols} corner of a ragged tile into C. */
    private void addEdge(float[] tile, int h, int cols, int ci, boolean add) {
        for (int r = 0; r < h; r++) {
            int cr = ci + r * ldc;
            for (int j = 0; j < cols; j++) {
                c[cr + j] = add ? c[cr + j] + tile[r * nr + j] : tile[r * nr + j];
            }
        }
    }

    private static int ceil(int x, int y) {
        return (x + y - 1) / y;
    }
}
