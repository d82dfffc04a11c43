package dev.anvil.kernels.cpu;

/**
 * Causal multi-head self-attention, forward and backward, in the flash-attention manner: the
 * forward pass keeps only each softmax row's log-sum-exp, and the backward pass recomputes the
 * probabilities from it, so memory stays O(T) per head instead of O(T²).
 */
final class CpuAttention {

    private final WorkerPool pool;
    /** Per-thread row of scores or probabilities, sized for the longest sequence seen. */
    private final ThreadLocal<float[]> rows = ThreadLocal.withInitial(() -> new float[0]);

    CpuAttention(WorkerPool pool) {
        this.pool = pool;
    }

    private float[] row(int t) {
        float[] r = rows.get();
        if (r.length < t) {
            r = new float[t];
            rows.set(r);
        }
        return r;
    }

    void forward(CpuBuffer out, CpuBuffer lse, CpuBuffer qkv, int b, int t, int c, int nh) {
        int hs = c / nh;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int c3 = 3 * c;
        float[] o = out.f, l = lse.f, x = qkv.f;
        // One task per (batch, head, query position): rows differ in cost (causal), the counter balances them.
        pool.forEach(b * nh * t, Math.max(1, t / 8), (start, end) -> {
            float[] p = row(t);
            for (int idx = start; idx < end; idx++) {
                int bb = idx / (nh * t);
                int h = (idx / t) % nh;
                int tq = idx % t;
                int base = qkv.offset + bb * t * c3;
                int q = base + tq * c3 + h * hs;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s <= tq; s++) {
                    int k = base + s * c3 + c + h * hs;
                    float dot = 0f;
                    for (int i = 0; i < hs; i++) {
                        dot += x[q + i] * x[k + i];
                    }
                    dot *= scale;
                    p[s] = dot;
                    max = Math.max(max, dot);
                }
                float sum = 0f;
                for (int s = 0; s <= tq; s++) {
                    float e = (float) Math.exp(p[s] - max);
                    p[s] = e;
                    sum += e;
                }
                float inv = 1f / sum;
                int oo = out.offset + (bb * t + tq) * c + h * hs;
                for (int i = 0; i < hs; i++) {
                    o[oo + i] = 0f;
                }
                for (int s = 0; s <= tq; s++) {
                    int v = base + s * c3 + 2 * c + h * hs;
                    float w = p[s] * inv;
                    for (int i = 0; i < hs; i++) {
                        o[oo + i] += w * x[v + i];
                    }
                }
                l[lse.offset + (bb * nh + h) * t + tq] = max + (float) Math.log(sum);
            }
        });
    }

    void backward(CpuBuffer dqkv, CpuBuffer dout, CpuBuffer qkv, CpuBuffer out, CpuBuffer lse,
                  int b, int t, int c, int nh) {
        int hs = c / nh;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int c3 = 3 * c;
        float[] dx = dqkv.f, dy = dout.f, x = qkv.f, o = out.f, l = lse.f;
        // One task per (batch, head): keys and values of a head collect gradient from every query,
        // so a head's rows stay on one thread and no two threads write the same element.
        pool.forEach(b * nh, 1, (start, end) -> {
            float[] p = row(t);
            for (int bh = start; bh < end; bh++) {
                int bb = bh / nh;
                int h = bh % nh;
                int base = qkv.offset + bb * t * c3;
                int dbase = dqkv.offset + bb * t * c3;
                for (int tq = 0; tq < t; tq++) {
                    int q = base + tq * c3 + h * hs;
                    int dq = dbase + tq * c3 + h * hs;
                    int go = dout.offset + (bb * t + tq) * c + h * hs;
                    int oo = out.offset + (bb * t + tq) * c + h * hs;
                    float rowLse = l[lse.offset + bh * t + tq];
                    // D = Σ_s P[s]·dP[s] = dout · out
                    float dSum = 0f;
                    for (int i = 0; i < hs; i++) {
                        dSum += dy[go + i] * o[oo + i];
                    }
                    for (int s = 0; s <= tq; s++) {
                        int k = base + s * c3 + c + h * hs;
                        float dot = 0f;
                        for (int i = 0; i < hs; i++) {
                            dot += x[q + i] * x[k + i];
                        }
                        p[s] = (float) Math.exp(dot * scale - rowLse);
                    }
                    for (int s = 0; s <= tq; s++) {
                        int k = base + s * c3 + c + h * hs;
                        int v = k + c;
                        int dk = dbase + s * c3 + c + h * hs;
                        int dv = dk + c;
                        float dp = 0f;
                        for (int i = 0; i < hs; i++) {
                            dp += dy[go + i] * x[v + i];
                            dx[dv + i] += p[s] * dy[go + i];
                        }
                        float ds = p[s] * (dp - dSum) * scale;
                        for (int i = 0; i < hs; i++) {
                            dx[dq + i] += ds * x[k + i];
                            dx[dk + i] += ds * x[q + i];
                        }
                    }
                }
            }
        });
    }
}
