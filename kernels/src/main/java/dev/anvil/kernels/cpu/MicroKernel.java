package dev.anvil.kernels.cpu;

/**
 * The innermost loop of {@link Gemm}: one {@code mr × nr} tile of C from a packed A micro-panel
 * ({@code kc} steps of {@code mr} values) and a packed B micro-panel ({@code kc} steps of
 * {@code nr} values). Every transpose case reaches this same loop, because packing has already
 * laid both operands out in the order it reads them.
 */
sealed interface MicroKernel permits VectorMicroKernel, ScalarMicroKernel {

    /** Rows of a tile, and of a packed A micro-panel. */
    int mr();

    /** Columns of a tile, and of a packed B micro-panel. */
    int nr();

    /**
     * {@code C[r, j] = Σ_k a[k·mr + r] · b[k·nr + j]} over the tile, added to C when {@code add}.
     *
     * @param c   the tile's first element is {@code c[cOff]}, rows {@code ldc} apart
     */
    void multiply(int kc, float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int ldc, boolean add);

    /** The Vector API kernel where {@code simd} is asked for (and available), else the scalar one. */
    static MicroKernel of(boolean simd) {
        return simd ? new VectorMicroKernel() : new ScalarMicroKernel();
    }
}
