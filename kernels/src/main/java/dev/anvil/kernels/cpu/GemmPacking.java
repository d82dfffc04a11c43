package dev.anvil.kernels.cpu;

/**
 * Copies a block of a strided matrix into the panel layout the {@link MicroKernel} reads: panels
 * of {@code w} rows, each stored step by step along the shared dimension {@code k}
 * ({@code w} consecutive values per step), the last panel zero-padded to {@code w} rows. A is
 * packed as it is (panels of {@code mr} rows); B is packed as its transpose (panels of
 * {@code nr} columns), so one routine serves both operands in every transpose case.
 *
 * <p>With the Vector API the two layouts the model's products meet take {@link VectorPacking}'s
 * paths: a panel whose rows are adjacent in memory is a copy of vectors, one whose rows run along
 * {@code k} a transpose in registers. Any other stride pattern moves one float at a time.
 */
final class GemmPacking {

    private GemmPacking() {
    }

    /**
     * Packs rows {@code [row0, row0 + rows)} and steps {@code [k0, k0 + kc)} of the matrix
     * {@code X[r, k] = x[off + r·rowStride + k·kStride]} into {@code dst} from {@code dstOff},
     * filling {@code ceil(rows / w) · w · kc} elements.
     *
     * @param simd whether the Vector API paths may be used (only where {@link Simd#available()})
     */
    static void pack(boolean simd, float[] x, int off, int rowStride, int kStride, int row0, int rows, int k0,
                     int kc, int w, float[] dst, int dstOff) {
        if (simd && rowStride == 1) {
            VectorPacking.packColumns(x, off, kStride, row0, rows, k0, kc, w, dst, dstOff);
        } else if (simd && kStride == 1 && VectorPacking.transposes()) {
            VectorPacking.packRows(x, off, rowStride, row0, rows, k0, kc, w, dst, dstOff);
        } else {
            packScalar(x, off, rowStride, kStride, row0, rows, k0, kc, w, dst, dstOff);
        }
    }

    private static void packScalar(float[] x, int off, int rowStride, int kStride, int row0, int rows, int k0,
                                   int kc, int w, float[] dst, int dstOff) {
        int d = dstOff;
        for (int p = 0; p < rows; p += w) {
            int h = Math.min(w, rows - p);
            int src = off + (row0 + p) * rowStride + k0 * kStride;
            for (int k = 0; k < kc; k++, src += kStride) {
                for (int r = 0, s = src; r < h; r++, s += rowStride) {
                    dst[d++] = x[s];
                }
                for (int r = h; r < w; r++) {
                    dst[d++] = 0f;
                }
            }
        }
    }
}
