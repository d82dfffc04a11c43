package dev.anvil.kernels.cpu;

/** GELU with the tanh approximation (GPT-2's {@code gelu_new}), forward and backward. */
final class CpuGelu {

    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2.0 / Math.PI);
    private static final float K = 0.044715f;
    private static final int GRAIN = 1 << 14;

    private final WorkerPool pool;

    CpuGelu(WorkerPool pool) {
        this.pool = pool;
    }

    void forward(CpuBuffer out, CpuBuffer inp, int n) {
        float[] o = out.f, x = inp.f;
        pool.forEach(n, GRAIN, (start, end) -> {
            for (int i = start; i < end; i++) {
                float v = x[inp.offset + i];
                float u = SQRT_2_OVER_PI * (v + K * v * v * v);
                o[out.offset + i] = 0.5f * v * (1f + (float) Math.tanh(u));
            }
        });
    }

    void backward(CpuBuffer dinp, CpuBuffer inp, CpuBuffer dout, int n) {
        float[] dx = dinp.f, x = inp.f, dy = dout.f;
        pool.forEach(n, GRAIN, (start, end) -> {
            for (int i = start; i < end; i++) {
                float v = x[inp.offset + i];
                float u = SQRT_2_OVER_PI * (v + K * v * v * v);
                float th = (float) Math.tanh(u);
                float sech2 = 1f - th * th;
                float local = 0.5f * (1f + th) + 0.5f * v * sech2 * SQRT_2_OVER_PI * (1f + 3f * K * v * v);
                dx[dinp.offset + i] += local * dy[dout.offset + i];
            }
        });
    }
}
