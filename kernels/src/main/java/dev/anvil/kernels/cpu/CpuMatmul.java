package dev.anvil.kernels.cpu;

/**
 * Matmul with bias: {@code out = inp · weightᵀ + bias}, forward and backward. All three products
 * run through one packed {@link Gemm}; they differ only in the strides they read their operands
 * with.
 */
final class CpuMatmul {

    private static final int BIAS_GRAIN = 256;

    private final WorkerPool pool;
    private final Gemm gemm;

    CpuMatmul(WorkerPool pool) {
        this(pool, new Gemm(pool, MicroKernel.of(Simd.available())));
    }

    /** Products through {@code gemm}, which runs on {@code pool} (tests pick its kernel and blocking). */
    CpuMatmul(WorkerPool pool, Gemm gemm) {
        this.pool = pool;
        this.gemm = gemm;
    }

    void forward(CpuBuffer out, CpuBuffer inp, CpuBuffer weight, CpuBuffer bias, int n, int c, int oc) {
        if (bias != null) {
            float[] o = out.f, bb = bias.f;
            pool.forEach(n, BIAS_GRAIN, (start, end) -> {
                for (int r = start; r < end; r++) {
                    System.arraycopy(bb, bias.offset, o, out.offset + r * oc, oc);
                }
            });
        }
        // out[n, oc] (+)= inp[n, c] · weightᵀ, weightᵀ[p, j] = weight[j·c + p]
        gemm.multiply(n, oc, c, inp.f, inp.offset, c, 1, weight.f, weight.offset, 1, c,
                out.f, out.offset, oc, bias != null);
    }

    void backward(CpuBuffer dinp, CpuBuffer dweight, CpuBuffer dbias, CpuBuffer dout, CpuBuffer inp,
                  CpuBuffer weight, int n, int c, int oc) {
        if (dinp != null) {
            // dinp[n, c] += dout[n, oc] · weight[oc, c]
            gemm.multiply(n, c, oc, dout.f, dout.offset, oc, 1, weight.f, weight.offset, c, 1,
                    dinp.f, dinp.offset, c, true);
        }
        if (dweight != null) {
            // dweight[oc, c] += doutᵀ · inp, doutᵀ[j, r] = dout[r·oc + j]
            gemm.multiply(oc, c, n, dout.f, dout.offset, 1, oc, inp.f, inp.offset, c, 1,
                    dweight.f, dweight.offset, c, true);
        }
        if (dbias != null) {
            float[] g = dout.f, db = dbias.f;
            // Each column's sum runs down the rows in order on one thread: deterministic.
            pool.forEach(oc, BIAS_GRAIN, (start, end) -> {
                for (int r = 0; r < n; r++) {
                    int go = dout.offset + r * oc;
                    for (int j = start; j < end; j++) {
                        db[dbias.offset + j] += g[go + j];
                    }
                }
            });
        }
    }
}
