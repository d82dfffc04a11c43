package dev.anvil.kernels.cpu;

/** Token + position embedding, forward and backward. */
final class CpuEncoder {

    private final WorkerPool pool;

    CpuEncoder(WorkerPool pool) {
        this.pool = pool;
    }

    void forward(CpuBuffer out, CpuBuffer tokens, CpuBuffer wte, CpuBuffer wpe, int b, int t, int c) {
        int vocab = (int) (wte.length() / c);
        float[] o = out.f, te = wte.f, pe = wpe.f;
        int[] tok = tokens.i;
        pool.forEach(b * t, (start, end) -> {
            for (int bt = start; bt < end; bt++) {
                int id = tok[tokens.offset + bt];
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("token id " + id + " at position " + bt
                            + " is outside the vocabulary [0, " + vocab + ")");
                }
                int oo = out.offset + bt * c;
                int to = wte.offset + id * c;
                int po = wpe.offset + (bt % t) * c;
                for (int i = 0; i < c; i++) {
                    o[oo + i] = te[to + i] + pe[po + i];
                }
            }
        });
    }

    void backward(CpuBuffer dwte, CpuBuffer dwpe, CpuBuffer dout, CpuBuffer tokens, int b, int t, int c) {
        float[] d = dout.f, dte = dwte.f, dpe = dwpe.f;
        int[] tok = tokens.i;
        // Check every id before writing anything: an id past the vocabulary would otherwise add into
        // whatever follows dwte in its parent gradient buffer.
        int vocab = (int) (dwte.length() / c);
        for (int bt = 0; bt < b * t; bt++) {
            int id = tok[tokens.offset + bt];
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("token id " + id + " at position " + bt
                        + " is outside the vocabulary [0, " + vocab + ")");
            }
        }
        // Parallel over channels: rows of dwte repeat across positions, columns never collide.
        pool.forEach(c, (c0, c1) -> {
            for (int bt = 0; bt < b * t; bt++) {
                int dOff = dout.offset + bt * c;
                int teOff = dwte.offset + tok[tokens.offset + bt] * c;
                int peOff = dwpe.offset + (bt % t) * c;
                for (int i = c0; i < c1; i++) {
                    float g = d[dOff + i];
                    dte[teOff + i] += g;
                    dpe[peOff + i] += g;
                }
            }
        });
    }
}
