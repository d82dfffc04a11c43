// LayerNorm over the channel dimension (eps 1e-5, biased variance), forward and backward.
#include "common.cuh"

#define LN_EPS 1e-5f

/**
 * The rest of one row's LayerNorm once each lane of its warp has summed its elements of x into s
 * (lanes stride over the channels): mean, variance in a second pass for accuracy, then out, mean, rstd.
 */
template <typename T>
__device__ __forceinline__ void layernorm_row(T* o, float* mean, float* rstd, const T* x, const T* weight,
                                              const T* bias, int C, int row, int lane, float s) {
    float m = warp_sum(s) / C;
    float v = 0.f;
    for (int i = lane; i < C; i += 32) {
        float d = to_float(x[i]) - m;
        v += d * d;
    }
    float r = 1.f / sqrtf(warp_sum(v) / C + LN_EPS);
    for (int i = lane; i < C; i += 32) {
        o[i] = from_float<T>((to_float(x[i]) - m) * r * to_float(weight[i]) + to_float(bias[i]));
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/** One warp per row; blockDim.x is a multiple of 32. Statistics in fp32, two passes for accuracy. */
template <typename T>
__device__ void layernorm_forward(T* out, float* mean, float* rstd, const T* inp, const T* weight,
                                  const T* bias, int N, int C) {
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= N) return;
    const T* x = inp + (size_t)row * C;
    float s = 0.f;
    for (int i = lane; i < C; i += 32) s += to_float(x[i]);
    layernorm_row(out + (size_t)row * C, mean, rstd, x, weight, bias, C, row, lane, s);
}
#define LN_FWD_PARAMS(T) (T* out, float* mean, float* rstd, const T* inp, const T* weight, const T* bias, \
                          int N, int C)
EXPORT_F32_BF16(layernorm_forward, LN_FWD_PARAMS, (out, mean, rstd, inp, weight, bias, N, C))

/**
 * residual = a + b, stored (rounded to T), then layernorm_forward of the stored values: one pass over
 * a and b instead of an add kernel and a LayerNorm kernel that reads its result back. The statistics
 * come out as layernorm_forward's (the same sums in the same order). One warp per row; each lane
 * re-reads only what it wrote itself.
 */
template <typename T>
__device__ void residual_layernorm_forward(T* residual, T* out, float* mean, float* rstd, const T* a, const T* b,
                                           const T* weight, const T* bias, int N, int C) {
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= N) return;
    size_t base = (size_t)row * C;
    T* x = residual + base;
    float s = 0.f;
    for (int i = lane; i < C; i += 32) {
        T v = from_float<T>(to_float(a[base + i]) + to_float(b[base + i]));
        x[i] = v;
        s += to_float(v);
    }
    layernorm_row(out + base, mean, rstd, x, weight, bias, C, row, lane, s);
}
#define RES_LN_FWD_PARAMS(T) (T* residual, T* out, float* mean, float* rstd, const T* a, const T* b, \
                              const T* weight, const T* bias, int N, int C)
EXPORT_F32_BF16(residual_layernorm_forward, RES_LN_FWD_PARAMS, (residual, out, mean, rstd, a, b, weight, bias, N, C))

/** dinp, one warp per row: dinp += (dnorm - mean(dnorm) - norm·mean(dnorm·norm)) · rstd. */
template <typename T>
__device__ void layernorm_backward_input(T* dinp, const T* dout, const T* inp, const T* weight,
                                         const float* mean, const float* rstd, int N, int C) {
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= N) return;
    const T* x = inp + (size_t)row * C;
    const T* g = dout + (size_t)row * C;
    T* dx = dinp + (size_t)row * C;
    float m = mean[row], s = rstd[row];
    float dnormSum = 0.f, dnormNormSum = 0.f;
    for (int i = lane; i < C; i += 32) {
        float norm = (to_float(x[i]) - m) * s;
        float dnorm = to_float(weight[i]) * to_float(g[i]);
        dnormSum += dnorm;
        dnormNormSum += dnorm * norm;
    }
    float dnormMean = warp_sum(dnormSum) / C;
    float dnormNormMean = warp_sum(dnormNormSum) / C;
    for (int i = lane; i < C; i += 32) {
        float norm = (to_float(x[i]) - m) * s;
        float dnorm = to_float(weight[i]) * to_float(g[i]);
        dx[i] = from_float<T>(to_float(dx[i]) + (dnorm - dnormMean - norm * dnormNormMean) * s);
    }
}
#define LN_BWD_IN_PARAMS(T) (T* dinp, const T* dout, const T* inp, const T* weight, const float* mean, \
                             const float* rstd, int N, int C)
EXPORT_F32_BF16(layernorm_backward_input, LN_BWD_IN_PARAMS, (dinp, dout, inp, weight, mean, rstd, N, C))

/**
 * dweight and dbias, stage 1: one thread per channel sums its chunk of rows into
 * partials[chunk, 0:C] (dweight = Σ dout·norm) and partials[chunk, C:2C] (dbias = Σ dout).
 * Stage 2 is add_partial_sums. Grid (ceil(C/blockDim), chunks).
 */
template <typename T>
__device__ void layernorm_backward_params(float* partials, const T* dout, const T* inp, const float* mean,
                                          const float* rstd, int N, int C, int rowsPerChunk) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int r0 = blockIdx.y * rowsPerChunk, r1 = min(N, r0 + rowsPerChunk);
    float dw = 0.f, db = 0.f;
    for (int r = r0; r < r1; r++) {
        float g = to_float(dout[(size_t)r * C + c]);
        float norm = (to_float(inp[(size_t)r * C + c]) - mean[r]) * rstd[r];
        dw += g * norm;
        db += g;
    }
    float* p = partials + (size_t)blockIdx.y * 2 * C;
    p[c] = dw;
    p[C + c] = db;
}
#define LN_BWD_P_PARAMS(T) (float* partials, const T* dout, const T* inp, const float* mean, const float* rstd, \
                            int N, int C, int rowsPerChunk)
EXPORT_F32_BF16(layernorm_backward_params, LN_BWD_P_PARAMS, (partials, dout, inp, mean, rstd, N, C, rowsPerChunk))
