package dev.anvil.kernels.cpu;

/**
 * How {@link Gemm} cuts a product into blocks, sized from the caches of the machine and the
 * kernel's tile. The blocking changes speed only: every element is one chain of fused
 * multiply-adds in step order whatever the blocks (see {@link MicroKernel}).
 *
 * @param kc            steps of the shared dimension per block: a packed B micro-panel
 *                      ({@code kc × nr} floats) fills L1, where it stays while A streams past it
 * @param mc            rows of A one task packs at most: {@code mc × kc} floats take an eighth of L2
 * @param nc            columns per column block: a thread's packed B block ({@code kc × nc}
 *                      floats) takes half of L2
 * @param sharedAFloats the most floats of packed A shared by all threads (rather than packed again
 *                      for every block of columns): four times L2
 * @param residentCFloats the most floats of C per thread that stay in the caches from one tile to the
 *                      next (a thread's L2); a larger C comes from memory, and where its rows lie
 *                      pages apart {@link Gemm} then runs each task's tiles row by row
 */
record GemmBlocking(int kc, int mc, int nc, long sharedAFloats, long residentCFloats) {

    private static final int MIN_KC = 128;
    private static final int MAX_KC = 512;

    GemmBlocking {
        if (kc <= 0 || mc <= 0 || nc <= 0 || sharedAFloats < 0 || residentCFloats < 0) {
            throw new IllegalArgumentException("blocks must be positive, got kc " + kc + ", mc " + mc + ", nc " + nc);
        }
    }

    /**
     * Steps per block for a product of {@code k} steps: {@code k} cut into the whole number of
     * blocks nearest to {@code k / kc}, evenly, so that a product just past {@code kc} steps (the
     * LM head's weight gradient at 512 rows a chunk) stays one block and reads and writes C once,
     * not twice. At most {@link #maxKc()}.
     */
    int stepsPerBlock(int k) {
        int blocks = Math.max(1, (int) Math.round((double) k / kc));
        return Math.min(maxKc(), (k + blocks - 1) / blocks);
    }

    /** The most steps a block can have: {@code 1.5 kc}. */
    int maxKc() {
        return kc + kc / 2;
    }

    /** The blocking for a kernel of {@code mr × nr} tiles on a core with {@code caches}. */
    static GemmBlocking of(CacheSizes caches, int mr, int nr) {
        int kc = (int) Math.clamp(caches.l1() / (Float.BYTES * nr) / 16 * 16, MIN_KC, MAX_KC);
        int mc = (int) Math.max(mr, caches.l2() / 8 / (Float.BYTES * kc) / mr * mr);
        int nc = (int) Math.max(nr, caches.l2() / 2 / (Float.BYTES * kc) / nr * nr);
        return new GemmBlocking(kc, mc, nc, caches.l2(), caches.l2() / Float.BYTES);
    }
}
