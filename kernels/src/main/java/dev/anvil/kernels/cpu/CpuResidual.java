package dev.anvil.kernels.cpu;

/** Residual add, forward and backward. */
final class CpuResidual {

    private static final int GRAIN = 1 << 15;

    private final WorkerPool pool;

    CpuResidual(WorkerPool pool) {
        this.pool = pool;
    }

    void forward(CpuBuffer out, CpuBuffer a, CpuBuffer b, int n) {
        float[] o = out.f, x = a.f, y = b.f;
        pool.forEach(n, GRAIN, (start, end) -> {
            for (int i = start; i < end; i++) {
                o[out.offset + i] = x[a.offset + i] + y[b.offset + i];
            }
        });
    }

    void backward(CpuBuffer da, CpuBuffer db, CpuBuffer dout, int n) {
        float[] ga = da.f, gb = db.f, g = dout.f;
        pool.forEach(n, GRAIN, (start, end) -> {
            for (int i = start; i < end; i++) {
                float d = g[dout.offset + i];
                ga[da.offset + i] += d;
                gb[db.offset + i] += d;
            }
        });
    }
}
