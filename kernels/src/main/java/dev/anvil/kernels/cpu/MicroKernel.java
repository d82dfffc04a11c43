package dev.anvil.kernels.cpu;

/**
 * The innermost loop of {@link Gemm}: one {@code mr × nr} tile of C from a packed A micro-panel
 * ({@code kc} steps of {@code mr} values) and a packed B micro-panel ({@code kc} steps of
 * {@code nr} values). Every transpose case reaches this same loop, because packing has already
 * laid both operands out in the order it reads them.
 *
 * <p>Every kernel computes each element of the tile as one chain of fused multiply-adds in step
 * order, starting from the element's value in C or from zero. A product split into blocks of steps
 * therefore gives the same bits as one unsplit chain, whatever the blocking, the tile shape or the
 * number of threads: results depend only on the operands.
 */
sealed interface MicroKernel permits WideVectorKernel, VectorMicroKernel, ScalarMicroKernel {

    /** Rows of a tile, and of a packed A micro-panel. */
    int mr();

    /** Columns of a tile, and of a packed B micro-panel. */
    int nr();

    /**
     * {@code C[r, j] = fma(a[(kc-1)·mr + r], b[(kc-1)·nr + j], … fma(a[r], b[j], C₀[r, j]))}, where
     * {@code C₀} is the tile as it was when {@code load}, else zero.
     *
     * @param c the tile's first element is {@code c[cOff]}, rows {@code ldc} apart
     */
    void multiply(int kc, float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int ldc, boolean load);

    /**
     * The fastest kernel for this machine: where {@code simd} is asked for (and available), the
     * vector kernel whose tile fits the register file the preferred species implies (32 registers
     * with 512-bit vectors, as on AVX-512; 16 otherwise, as on AVX2); else the scalar one.
     */
    static MicroKernel of(boolean simd) {
        if (!simd) {
            return new ScalarMicroKernel();
        }
        return WideVectorKernel.fitsRegisters() ? new WideVectorKernel() : new VectorMicroKernel();
    }
}
