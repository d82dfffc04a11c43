package dev.anvil.kernels.cpu;

/** LayerNorm over the channel dimension, forward and backward (eps 1e-5, biased variance). */
final class CpuLayerNorm {

    static final float EPS = 1e-5f;
    private static final int ROW_CHUNKS = 32;

    private final WorkerPool pool;
    private float[] partials = new float[0];

    CpuLayerNorm(WorkerPool pool) {
        this.pool = pool;
    }

    void forward(CpuBuffer out, CpuBuffer mean, CpuBuffer rstd, CpuBuffer inp, CpuBuffer weight, CpuBuffer bias,
                 int n, int c) {
        float[] o = out.f, x = inp.f, w = weight.f, bb = bias.f, mu = mean.f, rs = rstd.f;
        pool.forEach(n, (start, end) -> {
            for (int r = start; r < end; r++) {
                int xo = inp.offset + r * c;
                float m = 0f;
                for (int i = 0; i < c; i++) {
                    m += x[xo + i];
                }
                m /= c;
                float var = 0f;
                for (int i = 0; i < c; i++) {
                    float d = x[xo + i] - m;
                    var += d * d;
                }
                var /= c;
                float s = (float) (1.0 / Math.sqrt(var + EPS));
                int oo = out.offset + r * c;
                for (int i = 0; i < c; i++) {
                    o[oo + i] = (x[xo + i] - m) * s * w[weight.offset + i] + bb[bias.offset + i];
                }
                mu[mean.offset + r] = m;
                rs[rstd.offset + r] = s;
            }
        });
    }

    void backward(CpuBuffer dinp, CpuBuffer dweight, CpuBuffer dbias, CpuBuffer dout, CpuBuffer inp,
                  CpuBuffer weight, CpuBuffer mean, CpuBuffer rstd, int n, int c) {
        if (n == 0) {
            return;
        }
        float[] dx = dinp.f, dy = dout.f, x = inp.f, w = weight.f, mu = mean.f, rs = rstd.f;
        // Each chunk sums its rows' dweight and dbias privately; the sums are added at the end in
        // chunk order. Chunks depend on n only, so results are identical whatever the thread count
        // (a run resumed with other --threads continues bit for bit).
        int chunks = Math.min(n, ROW_CHUNKS);
        int rowsPerChunk = (n + chunks - 1) / chunks;
        float[] part = partials(chunks * 2 * c);
        pool.forEach(chunks, 1, (k0, k1) -> {
            for (int k = k0; k < k1; k++) {
                int pw = k * 2 * c;
                int pb = pw + c;
                java.util.Arrays.fill(part, pw, pw + 2 * c, 0f);
                int rEnd = Math.min(n, (k + 1) * rowsPerChunk);
                for (int r = k * rowsPerChunk; r < rEnd; r++) {
                    int xo = inp.offset + r * c, go = dout.offset + r * c, dxo = dinp.offset + r * c;
                    float m = mu[mean.offset + r], s = rs[rstd.offset + r];
                    float dnormMean = 0f, dnormNormMean = 0f;
                    for (int i = 0; i < c; i++) {
                        float norm = (x[xo + i] - m) * s;
                        float dnorm = w[weight.offset + i] * dy[go + i];
                        dnormMean += dnorm;
                        dnormNormMean += dnorm * norm;
                    }
                    dnormMean /= c;
                    dnormNormMean /= c;
                    for (int i = 0; i < c; i++) {
                        float norm = (x[xo + i] - m) * s;
                        float dnorm = w[weight.offset + i] * dy[go + i];
                        part[pb + i] += dy[go + i];
                        part[pw + i] += norm * dy[go + i];
                        dx[dxo + i] += (dnorm - dnormMean - norm * dnormNormMean) * s;
                    }
                }
            }
        });
        float[] dw = dweight.f, db = dbias.f;
        pool.forEach(c, (i0, i1) -> {
            for (int k = 0; k < chunks; k++) {
                int pw = k * 2 * c;
                for (int i = i0; i < i1; i++) {
                    dw[dweight.offset + i] += part[pw + i];
                    db[dbias.offset + i] += part[pw + c + i];
                }
            }
        });
    }

    private float[] partials(int size) {
        if (partials.length < size) {
            partials = new float[size];
        }
        return partials;
    }
}
