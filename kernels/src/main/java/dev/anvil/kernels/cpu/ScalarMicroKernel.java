package dev.anvil.kernels.cpu;

/**
 * The micro-kernel for JVMs without the Vector API: plain loops that accumulate straight into the
 * C tile, which stays in L1 across the {@code kc} steps.
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
                         boolean add) {
        if (!add) {
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
                    c[cr + j] += x * b[bk + j];
                }
            }
        }
    }
}
