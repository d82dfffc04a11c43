package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API micro-kernel: an 8 × (1 vector) tile in 8 accumulator registers, fed each step by
 * one vector load of B and eight broadcasts of A (loads on their own ports). Eight independent FMA
 * chains cover the FMA latency × throughput of current x86 cores (4 cycles × 2 pipes), and the
 * tile leaves enough of AVX2's 16 registers free that C2 keeps everything in registers; a
 * 6 × (2 vectors) tile, the classic BLIS shape, makes C2 spill an accumulator to the stack every
 * step and runs at ~55% of this one's speed. Loaded only when {@link Simd#available()}.
 */
final class VectorMicroKernel implements MicroKernel {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int MR = 8;
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
                         boolean add) {
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        for (int k = 0; k < kc; k++) {
            // Indices from k itself, not running offsets, let C2 drop the bounds checks.
            int ak = aOff + k * MR;
            FloatVector bk = FloatVector.fromArray(S, b, bOff + k * NR);
            c0 = FloatVector.broadcast(S, a[ak]).fma(bk, c0);
            c1 = FloatVector.broadcast(S, a[ak + 1]).fma(bk, c1);
            c2 = FloatVector.broadcast(S, a[ak + 2]).fma(bk, c2);
            c3 = FloatVector.broadcast(S, a[ak + 3]).fma(bk, c3);
            c4 = FloatVector.broadcast(S, a[ak + 4]).fma(bk, c4);
            c5 = FloatVector.broadcast(S, a[ak + 5]).fma(bk, c5);
            c6 = FloatVector.broadcast(S, a[ak + 6]).fma(bk, c6);
            c7 = FloatVector.broadcast(S, a[ak + 7]).fma(bk, c7);
        }
        store(c0, c, cOff, add);
        store(c1, c, cOff + ldc, add);
        store(c2, c, cOff + 2 * ldc, add);
        store(c3, c, cOff + 3 * ldc, add);
        store(c4, c, cOff + 4 * ldc, add);
        store(c5, c, cOff + 5 * ldc, add);
        store(c6, c, cOff + 6 * ldc, add);
        store(c7, c, cOff + 7 * ldc, add);
    }

    private static void store(FloatVector acc, float[] c, int off, boolean add) {
        (add ? acc.add(FloatVector.fromArray(S, c, off)) : acc).intoArray(c, off);
    }
}
