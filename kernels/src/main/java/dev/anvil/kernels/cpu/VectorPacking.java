package dev.anvil.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API paths of {@link GemmPacking}, for the two layouts every product of the model
 * meets: panels whose values for one step lie side by side in memory (a copy of vectors), and
 * panels whose rows lie along the steps (a transpose, done 16 × 16 in registers with two-source
 * permutes: four rounds of interleaving transpose a 16 × 16 block, 64 {@code vpermi2ps} for 256
 * values, about four times faster than moving floats one by one; whole blocks stay in registers,
 * see {@link RegisterTranspose}). Loaded only when
 * {@link Simd#available()}.
 */
final class VectorPacking {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Side of the in-register transpose: the 512-bit species' 16 lanes; other widths copy floats. */
    private static final int T = 16;
    static final FloatVector ZIP_LO;
    static final FloatVector ZIP_HI;
    /** Each thread's staging area for the rounds of a transpose: two 16 × 16 blocks. */
    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[2 * T * T]);

    static {
        // Lane i of the result takes lane ZIP[i] of (first, second): 0..15 the first, 16..31 the second.
        float[] lo = new float[L], hi = new float[L];
        for (int i = 0; i < L / 2; i++) {
            lo[2 * i] = i;
            lo[2 * i + 1] = L + i;
            hi[2 * i] = L / 2 + i;
            hi[2 * i + 1] = L + L / 2 + i;
        }
        ZIP_LO = FloatVector.fromArray(S, lo, 0);
        ZIP_HI = FloatVector.fromArray(S, hi, 0);
    }

    private VectorPacking() {
    }

    /** Whether {@link #packRows} can be used: the in-register transpose needs 16 lanes. */
    static boolean transposes() {
        return L == T;
    }

    /**
     * {@link GemmPacking#pack} for {@code rowStride == 1}: each step's {@code w} values of a panel
     * are adjacent in {@code x}, so they move as (masked) vectors. It runs step by step, each step's
     * values for all the panels at once: that reads {@code x} along its rows, where the hardware
     * prefetches, rather than a line from each of {@code kc} rows per panel, which it does not
     * once the rows are more than a page apart.
     */
    static void packColumns(float[] x, int off, int kStride, int row0, int rows, int k0, int kc, int w,
                            float[] dst, int dstOff) {
        int full = rows / w, last = full * w, ragged = rows - last;
        boolean wholeVectors = w % L == 0;
        if (wholeVectors) {
            // Whole panels of whole vectors: no masks.
            for (int k = 0; k < kc; k++) {
                int src = off + row0 + (k0 + k) * kStride, d = dstOff + k * w;
                for (int p = 0; p < full; p++) {
                    for (int j = 0; j < w; j += L) {
                        FloatVector.fromArray(S, x, src + p * w + j).intoArray(dst, d + p * w * kc + j);
                    }
                }
            }
        }
        // Masked: every panel of a width that is not whole vectors, and the ragged last one (zero-padded).
        int masked = wholeVectors ? 0 : full;
        for (int j = 0; j < w; j += L) {
            VectorMask<Float> room = S.indexInRange(0, Math.min(L, w - j));
            VectorMask<Float> valid = S.indexInRange(0, Math.max(0, Math.min(L, ragged - j)));
            for (int k = 0; k < kc; k++) {
                int src = off + row0 + j + (k0 + k) * kStride, d = dstOff + k * w + j;
                for (int p = 0; p < masked; p++) {
                    FloatVector.fromArray(S, x, src + p * w, room).intoArray(dst, d + p * w * kc, room);
                }
                if (ragged > 0) {
                    FloatVector.fromArray(S, x, src + last, valid).intoArray(dst, d + last * kc, room);
                }
            }
        }
    }

    /**
     * {@link GemmPacking#pack} for {@code kStride == 1}: each row of a panel is contiguous along
     * the steps, so 16 × 16 blocks are transposed in registers; rows past the last are zeros, and
     * steps past the last multiple of 16 are moved one by one. Needs {@link #transposes()}.
     */
    static void packRows(float[] x, int off, int rowStride, int row0, int rows, int k0, int kc, int w,
                         float[] dst, int dstOff) {
        int kBulk = kc - kc % T;
        float[] scratch = SCRATCH.get();
        int d = dstOff;
        for (int p = 0; p < rows; p += w, d += w * kc) {
            int h = Math.min(w, rows - p);
            int src = off + (row0 + p) * rowStride + k0;
            for (int g = 0; g < w; g += T) {
                int valid = Math.max(0, Math.min(T, h - g));
                int room = Math.min(T, w - g);
                if (RegisterTranspose.fits(valid, w, room)) {
                    for (int k = 0; k < kBulk; k += T) {
                        RegisterTranspose.transpose(x, src + g * rowStride + k, rowStride, valid, dst, d + k * w + g, w);
                    }
                } else {
                    for (int k = 0; k < kBulk; k += T) {
                        transpose(x, src + g * rowStride + k, rowStride, valid, dst, d + k * w + g, w, room, scratch);
                    }
                }
            }
            for (int k = kBulk; k < kc; k++) {
                for (int r = 0; r < w; r++) {
                    dst[d + k * w + r] = r < h ? x[src + r * rowStride + k] : 0f;
                }
            }
        }
    }

    /**
     * Reads {@code valid} rows of 16 values ({@code x[src + r·stride + i]}, zeros for rows past
     * {@code valid}) and writes their transpose: value {@code i} of row {@code r} to
     * {@code dst[d + i·ld + r]}, the first {@code room} lanes of each written row. For the ragged
     * blocks at a panel's edge, which {@link RegisterTranspose} does not take: the four rounds pass
     * through a thread's scratch in L1.
     */
    private static void transpose(float[] x, int src, int stride, int valid, float[] dst, int d, int ld,
                                  int room, float[] scratch) {
        int half = T * T;
        zip(x, src, stride, valid, scratch, 0, T, T);
        zip(scratch, 0, T, T, scratch, half, T, T);
        zip(scratch, half, T, T, scratch, 0, T, T);
        zip(scratch, 0, T, T, dst, d, ld, room);
    }

    /**
     * One round of the transpose: rows {@code i} and {@code i + 8} of {@code from} interleave into
     * rows {@code 2i} and {@code 2i + 1} of {@code to}. After four rounds, row {@code r} lane
     * {@code c} has moved to row {@code c} lane {@code r}.
     */
    private static void zip(float[] from, int fromOff, int fromStride, int valid, float[] to, int toOff,
                            int toStride, int room) {
        // The mask is made here, not passed in: a vector or mask argument is boxed whenever C2 declines to
        // inline the call (as it does once the callee has been compiled on its own), one object per call.
        VectorMask<Float> lanes = S.indexInRange(0, room);
        for (int i = 0; i < T / 2; i++) {
            // Loaded here, not by a helper returning a vector: one C2 did not inline would box them.
            FloatVector a = i < valid ? FloatVector.fromArray(S, from, fromOff + i * fromStride) : FloatVector.zero(S);
            FloatVector b = i + T / 2 < valid ? FloatVector.fromArray(S, from, fromOff + (i + T / 2) * fromStride)
                    : FloatVector.zero(S);
            ZIP_LO.selectFrom(a, b).intoArray(to, toOff + 2 * i * toStride, lanes);
            ZIP_HI.selectFrom(a, b).intoArray(to, toOff + (2 * i + 1) * toStride, lanes);
        }
    }
}
