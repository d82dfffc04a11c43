package dev.anvil.kernels.cpu;

import dev.anvil.kernels.AdamWStep;

/** The AdamW update of {@code torch.optim.AdamW}, and the sum of squares for gradient clipping. */
final class CpuAdamW {

    private static final int GRAIN = 1 << 15;

    private final WorkerPool pool;
    private double[] partials = new double[0];

    CpuAdamW(WorkerPool pool) {
        this.pool = pool;
    }

    void update(CpuBuffer params, CpuBuffer grads, CpuBuffer m, CpuBuffer v, AdamWStep s) {
        float[] p = params.f, g = grads.f, mm = m.f, vv = v.f;
        float b1 = s.beta1(), b2 = s.beta2();
        // PyTorch computes the bias corrections in double precision, then steps in fp32.
        double bc1 = 1.0 - Math.pow(b1, s.step());
        double bc2 = 1.0 - Math.pow(b2, s.step());
        float stepSize = (float) (s.lr() / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        float decay = 1f - s.lr() * s.weightDecay();
        float eps = s.eps(), scale = s.gradScale();
        int n = (int) params.length();
        pool.forEach(n, GRAIN, (start, end) -> {
            for (int i = start; i < end; i++) {
                float grad = g[grads.offset + i] * scale;
                float mi = mm[m.offset + i] + (grad - mm[m.offset + i]) * (1f - b1);
                float vi = vv[v.offset + i] * b2 + (1f - b2) * grad * grad;
                mm[m.offset + i] = mi;
                vv[v.offset + i] = vi;
                float pi = p[params.offset + i] * decay;
                float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
                p[params.offset + i] = pi - stepSize * (mi / denom);
            }
        });
    }

    double sumOfSquares(CpuBuffer x) {
        float[] a = x.f;
        int n = (int) x.length();
        // Chunking depends on n only, so the sum is the same whatever the thread count.
        int chunks = n / GRAIN + 1;
        int per = (n + chunks - 1) / chunks;
        if (partials.length < chunks) {
            partials = new double[chunks];
        }
        double[] part = partials;
        pool.forEach(chunks, 1, (k0, k1) -> {
            for (int k = k0; k < k1; k++) {
                double acc = 0.0;
                int end = Math.min(n, (k + 1) * per);
                for (int i = k * per; i < end; i++) {
                    double d = a[x.offset + i];
                    acc += d * d;
                }
                part[k] = acc;
            }
        });
        double total = 0.0;
        for (int k = 0; k < chunks; k++) {
            total += part[k];
        }
        return total;
    }
}
