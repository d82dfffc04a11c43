package dev.anvil.kernels.cpu;

/**
 * The micro-kernel for JVMs without the Vector API: plain loops over a C tile that stays in L1
 * across the {@code kc} steps. Each element is the same chain of fused multiply-adds, in the same
 * order, as in the vector kernels, so all of them give the same bits.
 */
final class ScalarMicroKernel implements MicroKernel {

    private static final int MR = 4;
    private static final int NR = 16;

    @Override
    public int mr() {
        return MR;
    }

    @Override
    public int nr() {
        return NR;
    }

    @Override
    public void multiply(int kc, float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int ldc,
                         boolean load) {
        if (!load) {
            for (int r = 0; r < MR; r++) {
                java.util.Arrays.fill(c, cOff + r * ldc, cOff + r * ldc + NR, 0f);
            }
        }
        for (int k = 0; k < kc; k++) {
            int bk = bOff + k * NR;
            for (int r = 0; r < MR; r++) {
                float x = a[aOff + k * MR + r];
                int cr = cOff + r * ldc;
                for (int j = 0; j < NR; j++) {
                    c[cr + j] = Math.fma(x, b[bk + j], c[cr + j]);
                }
            }
        }
    }
}
