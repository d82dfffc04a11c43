package dev.anvil.kernels.cpu;

/** Matmul with bias: {@code out = inp · weightᵀ + bias}, forward and backward. */
final class CpuMatmul {

    private final WorkerPool pool;

    CpuMatmul(WorkerPool pool) {
        this.pool = pool;
    }

    void forward(CpuBuffer out, CpuBuffer inp, CpuBuffer weight, CpuBuffer bias, int n, int c, int oc) {
        float[] o = out.f, x = inp.f, w = weight.f;
        float[] bb = bias == null ? null : bias.f;
        pool.forEach(n, (start, end) -> {
            for (int r = start; r < end; r++) {
                int xo = inp.offset + r * c;
                for (int j = 0; j < oc; j++) {
                    int wo = weight.offset + j * c;
                    float acc = bb == null ? 0f : bb[bias.offset + j];
                    for (int i = 0; i < c; i++) {
                        acc += x[xo + i] * w[wo + i];
                    }
                    o[out.offset + r * oc + j] = acc;
                }
            }
        });
    }

    void backward(CpuBuffer dinp, CpuBuffer dweight, CpuBuffer dbias, CpuBuffer dout, CpuBuffer inp,
                  CpuBuffer weight, int n, int c, int oc) {
        float[] g = dout.f, x = inp.f, w = weight.f, dw = dweight.f;
        if (dinp != null) {
            float[] dx = dinp.f;
            pool.forEach(n, (start, end) -> {
                for (int r = start; r < end; r++) {
                    int dxo = dinp.offset + r * c;
                    for (int j = 0; j < oc; j++) {
                        float d = g[dout.offset + r * oc + j];
                        int wo = weight.offset + j * c;
                        for (int i = 0; i < c; i++) {
                            dx[dxo + i] += d * w[wo + i];
                        }
                    }
                }
            });
        }
        float[] db = dbias == null ? null : dbias.f;
        pool.forEach(oc, (start, end) -> {
            for (int j = start; j < end; j++) {
                int dwo = dweight.offset + j * c;
                float bsum = 0f;
                for (int r = 0; r < n; r++) {
                    float d = g[dout.offset + r * oc + j];
                    bsum += d;
                    int xo = inp.offset + r * c;
                    for (int i = 0; i < c; i++) {
                        dw[dwo + i] += d * x[xo + i];
                    }
                }
                if (db != null) {
                    db[dbias.offset + j] += bsum;
                }
            }
        });
    }
}
