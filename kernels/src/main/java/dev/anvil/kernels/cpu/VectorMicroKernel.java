package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The micro-kernel for vector ISAs with 16 registers (AVX2, and any species narrower than 512
 * bits): a 12 × (1 vector) tile in 12 accumulators, fed each step by one vector load of B and
 * twelve broadcasts of A (loads on their own ports). Twelve independent FMA chains cover the FMA
 * latency × throughput of current x86 cores (4 cycles × 2 pipes) with room to spare, and the tile
 * leaves two of the 16 registers for B and the broadcast, so C2 keeps everything in registers;
 * wider tiles (6 × 2, 4 × 3 vectors) make it spill and run at two thirds of this one's speed.
 * Loaded only when {@link Simd#available()}.
 */
final class VectorMicroKernel implements MicroKernel {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int MR = 12;
    private static final int NR = S.length();

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
        FloatVector c0 = start(c, cOff + 0 * ldc, load);
        FloatVector c1 = start(c, cOff + 1 * ldc, load);
        FloatVector c2 = start(c, cOff + 2 * ldc, load);
        FloatVector c3 = start(c, cOff + 3 * ldc, load);
        FloatVector c4 = start(c, cOff + 4 * ldc, load);
        FloatVector c5 = start(c, cOff + 5 * ldc, load);
        FloatVector c6 = start(c, cOff + 6 * ldc, load);
        FloatVector c7 = start(c, cOff + 7 * ldc, load);
        FloatVector c8 = start(c, cOff + 8 * ldc, load);
        FloatVector c9 = start(c, cOff + 9 * ldc, load);
        FloatVector c10 = start(c, cOff + 10 * ldc, load);
        FloatVector c11 = start(c, cOff + 11 * ldc, load);
        for (int k = 0; k < kc; k++) {
            // Indices from k itself, not running offsets, let C2 drop the bounds checks.
            int ak = aOff + k * MR;
            FloatVector bk = FloatVector.fromArray(S, b, bOff + k * NR);
            c0 = FloatVector.broadcast(S, a[ak + 0]).fma(bk, c0);
            c1 = FloatVector.broadcast(S, a[ak + 1]).fma(bk, c1);
            c2 = FloatVector.broadcast(S, a[ak + 2]).fma(bk, c2);
            c3 = FloatVector.broadcast(S, a[ak + 3]).fma(bk, c3);
            c4 = FloatVector.broadcast(S, a[ak + 4]).fma(bk, c4);
            c5 = FloatVector.broadcast(S, a[ak + 5]).fma(bk, c5);
            c6 = FloatVector.broadcast(S, a[ak + 6]).fma(bk, c6);
            c7 = FloatVector.broadcast(S, a[ak + 7]).fma(bk, c7);
            c8 = FloatVector.broadcast(S, a[ak + 8]).fma(bk, c8);
            c9 = FloatVector.broadcast(S, a[ak + 9]).fma(bk, c9);
            c10 = FloatVector.broadcast(S, a[ak + 10]).fma(bk, c10);
            c11 = FloatVector.broadcast(S, a[ak + 11]).fma(bk, c11);
        }
        c0.intoArray(c, cOff + 0 * ldc);
        c1.intoArray(c, cOff + 1 * ldc);
        c2.intoArray(c, cOff + 2 * ldc);
        c3.intoArray(c, cOff + 3 * ldc);
        c4.intoArray(c, cOff + 4 * ldc);
        c5.intoArray(c, cOff + 5 * ldc);
        c6.intoArray(c, cOff + 6 * ldc);
        c7.intoArray(c, cOff + 7 * ldc);
        c8.intoArray(c, cOff + 8 * ldc);
        c9.intoArray(c, cOff + 9 * ldc);
        c10.intoArray(c, cOff + 10 * ldc);
        c11.intoArray(c, cOff + 11 * ldc);
    }

    private static FloatVector start(float[] c, int off, boolean load) {
        return load ? FloatVector.fromArray(S, c, off) : FloatVector.zero(S);
    }
}
