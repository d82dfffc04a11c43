package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link VectorPacking}'s 16 × 16 transpose with all sixteen rows in registers: four rounds of
 * two-source interleaves ({@code vpermi2ps}) between sixteen local vectors, which C2 keeps in the
 * 32 AVX-512 registers. Three times faster than the rounds through memory that ragged blocks take
 * (0.16 against 0.49 ns a float from L2), and packing is most of what a product does besides the
 * micro-kernel. The code is written out because the rounds must name their vectors.
 */
final class RegisterTranspose {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final FloatVector ZIP_LO = VectorPacking.ZIP_LO;
    private static final FloatVector ZIP_HI = VectorPacking.ZIP_HI;
    /** The first 12 lanes: the last row of a transpose into a 12-wide panel. */
    private static final VectorMask<Float> FIRST_12 = S.indexInRange(0, 12);
    private static final VectorMask<Float> ALL = S.maskAll(true);
    private static final int T = 16;

    private RegisterTranspose() {
    }

    /** Whether a panel {@code w} wide takes whole transposes: 16 rows of a wider panel, or all 12 of a 12-row one. */
    static boolean fits(int valid, int w, int room) {
        return valid == T && room == T || valid == w && w == 12;
    }

    /**
     * Rows {@code r < rows} (16, or 12 with zeros below) of 16 values ({@code x[src + r·stride + i]})
     * transposed: value {@code i} of row {@code r} to {@code dst[d + i·ld + r]}. Into a panel 12
     * wide ({@code ld = 12}) each output row is stored whole, its four spare lanes overwritten by
     * the next; the last is masked, so nothing past the block is touched.
     */
    static void transpose(float[] x, int src, int stride, int rows, float[] dst, int d, int ld) {
        FloatVector a0 = FloatVector.fromArray(S, x, src + 0 * stride);
        FloatVector a1 = FloatVector.fromArray(S, x, src + 1 * stride);
        FloatVector a2 = FloatVector.fromArray(S, x, src + 2 * stride);
        FloatVector a3 = FloatVector.fromArray(S, x, src + 3 * stride);
        FloatVector a4 = FloatVector.fromArray(S, x, src + 4 * stride);
        FloatVector a5 = FloatVector.fromArray(S, x, src + 5 * stride);
        FloatVector a6 = FloatVector.fromArray(S, x, src + 6 * stride);
        FloatVector a7 = FloatVector.fromArray(S, x, src + 7 * stride);
        FloatVector a8 = FloatVector.fromArray(S, x, src + 8 * stride);
        FloatVector a9 = FloatVector.fromArray(S, x, src + 9 * stride);
        FloatVector a10 = FloatVector.fromArray(S, x, src + 10 * stride);
        FloatVector a11 = FloatVector.fromArray(S, x, src + 11 * stride);
        FloatVector a12 = rows > 12 ? FloatVector.fromArray(S, x, src + 12 * stride) : FloatVector.zero(S);
        FloatVector a13 = rows > 13 ? FloatVector.fromArray(S, x, src + 13 * stride) : FloatVector.zero(S);
        FloatVector a14 = rows > 14 ? FloatVector.fromArray(S, x, src + 14 * stride) : FloatVector.zero(S);
        FloatVector a15 = rows > 15 ? FloatVector.fromArray(S, x, src + 15 * stride) : FloatVector.zero(S);
        FloatVector b0 = ZIP_LO.selectFrom(a0, a8);
        FloatVector b1 = ZIP_HI.selectFrom(a0, a8);
        FloatVector b2 = ZIP_LO.selectFrom(a1, a9);
        FloatVector b3 = ZIP_HI.selectFrom(a1, a9);
        FloatVector b4 = ZIP_LO.selectFrom(a2, a10);
        FloatVector b5 = ZIP_HI.selectFrom(a2, a10);
        FloatVector b6 = ZIP_LO.selectFrom(a3, a11);
        FloatVector b7 = ZIP_HI.selectFrom(a3, a11);
        FloatVector b8 = ZIP_LO.selectFrom(a4, a12);
        FloatVector b9 = ZIP_HI.selectFrom(a4, a12);
        FloatVector b10 = ZIP_LO.selectFrom(a5, a13);
        FloatVector b11 = ZIP_HI.selectFrom(a5, a13);
        FloatVector b12 = ZIP_LO.selectFrom(a6, a14);
        FloatVector b13 = ZIP_HI.selectFrom(a6, a14);
        FloatVector b14 = ZIP_LO.selectFrom(a7, a15);
        FloatVector b15 = ZIP_HI.selectFrom(a7, a15);
        FloatVector c0 = ZIP_LO.selectFrom(b0, b8);
        FloatVector c1 = ZIP_HI.selectFrom(b0, b8);
        FloatVector c2 = ZIP_LO.selectFrom(b1, b9);
        FloatVector c3 = ZIP_HI.selectFrom(b1, b9);
        FloatVector c4 = ZIP_LO.selectFrom(b2, b10);
        FloatVector c5 = ZIP_HI.selectFrom(b2, b10);
        FloatVector c6 = ZIP_LO.selectFrom(b3, b11);
        FloatVector c7 = ZIP_HI.selectFrom(b3, b11);
        FloatVector c8 = ZIP_LO.selectFrom(b4, b12);
        FloatVector c9 = ZIP_HI.selectFrom(b4, b12);
        FloatVector c10 = ZIP_LO.selectFrom(b5, b13);
        FloatVector c11 = ZIP_HI.selectFrom(b5, b13);
        FloatVector c12 = ZIP_LO.selectFrom(b6, b14);
        FloatVector c13 = ZIP_HI.selectFrom(b6, b14);
        FloatVector c14 = ZIP_LO.selectFrom(b7, b15);
        FloatVector c15 = ZIP_HI.selectFrom(b7, b15);
        FloatVector d0 = ZIP_LO.selectFrom(c0, c8);
        FloatVector d1 = ZIP_HI.selectFrom(c0, c8);
        FloatVector d2 = ZIP_LO.selectFrom(c1, c9);
        FloatVector d3 = ZIP_HI.selectFrom(c1, c9);
        FloatVector d4 = ZIP_LO.selectFrom(c2, c10);
        FloatVector d5 = ZIP_HI.selectFrom(c2, c10);
        FloatVector d6 = ZIP_LO.selectFrom(c3, c11);
        FloatVector d7 = ZIP_HI.selectFrom(c3, c11);
        FloatVector d8 = ZIP_LO.selectFrom(c4, c12);
        FloatVector d9 = ZIP_HI.selectFrom(c4, c12);
        FloatVector d10 = ZIP_LO.selectFrom(c5, c13);
        FloatVector d11 = ZIP_HI.selectFrom(c5, c13);
        FloatVector d12 = ZIP_LO.selectFrom(c6, c14);
        FloatVector d13 = ZIP_HI.selectFrom(c6, c14);
        FloatVector d14 = ZIP_LO.selectFrom(c7, c15);
        FloatVector d15 = ZIP_HI.selectFrom(c7, c15);
        FloatVector e0 = ZIP_LO.selectFrom(d0, d8);
        FloatVector e1 = ZIP_HI.selectFrom(d0, d8);
        FloatVector e2 = ZIP_LO.selectFrom(d1, d9);
        FloatVector e3 = ZIP_HI.selectFrom(d1, d9);
        FloatVector e4 = ZIP_LO.selectFrom(d2, d10);
        FloatVector e5 = ZIP_HI.selectFrom(d2, d10);
        FloatVector e6 = ZIP_LO.selectFrom(d3, d11);
        FloatVector e7 = ZIP_HI.selectFrom(d3, d11);
        FloatVector e8 = ZIP_LO.selectFrom(d4, d12);
        FloatVector e9 = ZIP_HI.selectFrom(d4, d12);
        FloatVector e10 = ZIP_LO.selectFrom(d5, d13);
        FloatVector e11 = ZIP_HI.selectFrom(d5, d13);
        FloatVector e12 = ZIP_LO.selectFrom(d6, d14);
        FloatVector e13 = ZIP_HI.selectFrom(d6, d14);
        FloatVector e14 = ZIP_LO.selectFrom(d7, d15);
        FloatVector e15 = ZIP_HI.selectFrom(d7, d15);
        e0.intoArray(dst, d + 0 * ld);
        e1.intoArray(dst, d + 1 * ld);
        e2.intoArray(dst, d + 2 * ld);
        e3.intoArray(dst, d + 3 * ld);
        e4.intoArray(dst, d + 4 * ld);
        e5.intoArray(dst, d + 5 * ld);
        e6.intoArray(dst, d + 6 * ld);
        e7.intoArray(dst, d + 7 * ld);
        e8.intoArray(dst, d + 8 * ld);
        e9.intoArray(dst, d + 9 * ld);
        e10.intoArray(dst, d + 10 * ld);
        e11.intoArray(dst, d + 11 * ld);
        e12.intoArray(dst, d + 12 * ld);
        e13.intoArray(dst, d + 13 * ld);
        e14.intoArray(dst, d + 14 * ld);
        e15.intoArray(dst, d + 15 * ld, ld < T ? FIRST_12 : ALL);
    }
}
