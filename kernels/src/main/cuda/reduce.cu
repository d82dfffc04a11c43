// Deterministic column sums in two stages: blocks write per-chunk partial sums to fp32 scratch,
// then one thread per column adds the chunks in a fixed order. Used for the matmul's dbias and
// LayerNorm's dweight/dbias, which would otherwise need atomics across rows.
#include "common.cuh"

/** partials[chunk, c] = Σ over this chunk's rows of x[r, c]; grid (ceil(C/blockDim), chunks). */
template <typename T>
__device__ void column_partial_sums(float* partials, const T* x, int N, int C, int rowsPerChunk) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int r0 = blockIdx.y * rowsPerChunk, r1 = min(N, r0 + rowsPerChunk);
    float acc = 0.f;
    for (int r = r0; r < r1; r++) acc += to_float(x[(size_t)r * C + c]);
    partials[(size_t)blockIdx.y * C + c] = acc;
}
#define COL_PART_PARAMS(T) (float* partials, const T* x, int N, int C, int rowsPerChunk)
EXPORT_F32_BF16(column_partial_sums, COL_PART_PARAMS, (partials, x, N, C, rowsPerChunk))

/** out[c] += Σ_k partials[k·stride + c], the chunks added in order. */
template <typename T>
__device__ void add_partial_sums(T* out, const float* partials, int chunks, int stride, int C) {
    GRID_STRIDE(c, C) {
        float acc = 0.f;
        for (int k = 0; k < chunks; k++) acc += partials[(size_t)k * stride + c];
        out[c] = from_float<T>(to_float(out[c]) + acc);
    }
}
#define ADD_PART_PARAMS(T) (T* out, const float* partials, int chunks, int stride, int C)
EXPORT_F32_BF16(add_partial_sums, ADD_PART_PARAMS, (out, partials, chunks, stride, C))

/**
 * Σ x² for gradient clipping, stage 1: each block sums a grid-strided share in double and writes
 * partials[blockIdx.x]. Double accumulators keep 100M-element sums exact enough.
 */
template <typename T>
__device__ void sum_squares_partial(double* partials, const T* x, size_t n) {
    double acc = 0.0;
    GRID_STRIDE(i, n) {
        double v = to_float(x[i]);
        acc += v * v;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}
#define SUMSQ_PARAMS(T) (double* partials, const T* x, size_t n)
EXPORT_F32_BF16(sum_squares_partial, SUMSQ_PARAMS, (partials, x, n))

/** Stage 2, one block: out[0] = Σ partials. */
extern "C" __global__ void sum_squares_final(float* out, const double* partials, int count) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
    acc = block_sum(acc);
    if (threadIdx.x == 0) out[0] = (float)acc;
}

/**
 * clip_grad_norm_'s factor on the device, from Σg² (sum_squares_final's output): stats[0] = the
 * norm, stats[1] = maxNorm / (norm + 1e-6) when that is below 1, else 1 (1 when maxNorm <= 0), or
 * NaN when the norm is not finite, which makes AdamW skip the update. fp32 as the host computes it:
 * sqrtf is correctly rounded, as the host's sqrt in double narrowed to float is.
 */
extern "C" __global__ void gradient_clip(float* stats, const float* sumSquares, float maxNorm) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    float norm = sqrtf(sumSquares[0]);
    float scale = 1.f;
    if (!isfinite(norm)) {
        scale = CUDART_NAN_F;
    } else if (maxNorm > 0.f) {
        float s = maxNorm / (norm + 1e-6f);
        scale = s < 1.f ? s : 1.f;
    }
    stats[0] = norm;
    stats[1] = scale;
}
