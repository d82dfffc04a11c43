// Fused softmax + cross-entropy: per-row loss, then the gradient written over the logits in place.
#include "common.cuh"

/** Merges two online-softmax states (running max m, Σ exp(x - m)); an empty state has m = -inf. */
__device__ __forceinline__ void softmax_merge(float& m, float& s, float m2, float s2) {
    if (m2 == -CUDART_INF_F) return;
    if (m == -CUDART_INF_F) { m = m2; s = s2; return; }
    float mx = fmaxf(m, m2);
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

/**
 * One block per row. Pass 1 finds max and Σexp in one read (online softmax); pass 2, when
 * scale != 0, writes (softmax - onehot)·scale over logits[:V] and 0 over the padding [V, Vp).
 * A target outside [0, V) is reported and its row's loss is NaN.
 */
template <typename T>
__device__ void softmax_cross_entropy(float* losses, T* logits, const int* targets, int V, int Vp,
                                      float scale, int* errors) {
    __shared__ float sm[32], ss[32];
    int row = blockIdx.x;
    T* z = logits + (size_t)row * Vp;
    int target = targets[row];
    if (target < 0 || target >= V) {  // uniform across the block
        if (threadIdx.x == 0) {
            report_error(errors, ANVIL_ERR_TARGET, row, target);
            losses[row] = CUDART_NAN_F;
        }
        return;
    }
    float m = -CUDART_INF_F, s = 0.f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float x = to_float(z[i]);
        if (x > m) {
            s = s * expf(m - x) + 1.f;
            m = x;
        } else if (x != -CUDART_INF_F) {  // exp(-inf - -inf) would be NaN
            s += expf(x - m);
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        softmax_merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        sm[warp] = m;
        ss[warp] = s;
    }
    // The target's logit is read before the barrier, after which pass 2 may overwrite it.
    float zt = threadIdx.x == 0 ? to_float(z[target]) : 0.f;
    __syncthreads();
    m = -CUDART_INF_F;
    s = 0.f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) softmax_merge(m, s, sm[w], ss[w]);
    if (threadIdx.x == 0) losses[row] = m + logf(s) - zt;
    if (scale == 0.f) return;
    float inv = 1.f / s;
    for (int i = threadIdx.x; i < Vp; i += blockDim.x) {
        float g = 0.f;
        if (i < V) {
            float p = expf(to_float(z[i]) - m) * inv;
            g = (p - (i == target ? 1.f : 0.f)) * scale;
        }
        z[i] = from_float<T>(g);
    }
}
#define XENT_PARAMS(T) (float* losses, T* logits, const int* targets, int V, int Vp, float scale, int* errors)
EXPORT_F32_BF16(softmax_cross_entropy, XENT_PARAMS, (losses, logits, targets, V, Vp, scale, errors))
