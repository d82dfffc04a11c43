// The AdamW update of torch.optim.AdamW. The host folds the bias corrections (computed in double,
// as PyTorch does) into stepSize and bc2Sqrt; the rest is fp32, in the same order as the CPU backend.
#include "common.cuh"

/**
 * P: parameter storage, G: gradient storage. With master != null the update is made on the fp32
 * master weights and rounded into params; otherwise params are read and written directly.
 */
template <typename P, typename G>
__device__ void adamw(P* params, float* master, const G* grads, float* m, float* v, size_t n, float beta1,
                      float beta2, float eps, float decay, float stepSize, float bc2Sqrt, float gradScale,
                      const float* deviceScale) {
    // The clip factor computed on the device (gradient_clip), when given: no host round trip. A
    // non-finite factor (a non-finite gradient norm) skips the update: weights and moments stay.
    if (deviceScale != nullptr) gradScale = *deviceScale;
    if (!isfinite(gradScale)) return;
    GRID_STRIDE(i, n) {
        float g = to_float(grads[i]) * gradScale;
        float mi = m[i] + (g - m[i]) * (1.f - beta1);
        float vi = v[i] * beta2 + (1.f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = (master != nullptr ? master[i] : to_float(params[i])) * decay;
        float denom = sqrtf(vi) / bc2Sqrt + eps;
        p = p - stepSize * (mi / denom);
        if (master != nullptr) master[i] = p;
        params[i] = from_float<P>(p);
    }
}

#define ADAMW_EXPORT(name, P, G)                                                                      \
    extern "C" __global__ void name(P* params, float* master, const G* grads, float* m, float* v,      \
                                    size_t n, float beta1, float beta2, float eps, float decay,         \
                                    float stepSize, float bc2Sqrt, float gradScale,                    \
                                    const float* deviceScale) {                                        \
        adamw<P, G>(params, master, grads, m, v, n, beta1, beta2, eps, decay, stepSize, bc2Sqrt,       \
                    gradScale, deviceScale);                                                           \
    }
ADAMW_EXPORT(adamw_f32_f32, float, float)
ADAMW_EXPORT(adamw_bf16_bf16, bf16, bf16)
ADAMW_EXPORT(adamw_bf16_f32, bf16, float)
