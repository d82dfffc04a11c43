// GELU with the tanh approximation (GPT-2's gelu_new), forward and backward.
#include "common.cuh"

#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)
#define GELU_K 0.044715f

__device__ __forceinline__ float gelu(float x) {
    float u = GELU_SCALE * (x + GELU_K * x * x * x);
    return 0.5f * x * (1.f + tanhf(u));
}

/** d gelu / dx. */
__device__ __forceinline__ float gelu_grad(float x) {
    float u = GELU_SCALE * (x + GELU_K * x * x * x);
    float th = tanhf(u);
    float sech2 = 1.f - th * th;
    return 0.5f * (1.f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.f + 3.f * GELU_K * x * x);
}

template <typename T>
__device__ void gelu_forward(T* out, const T* inp, int n) {
    elementwise<T>(n, aligned16(out) && aligned16(inp), [&](size_t j) {
        Vec<T> x = load_vec(inp + j), y;
#pragma unroll
        for (int k = 0; k < Vec<T>::N; k++) y.v[k] = from_float<T>(gelu(to_float(x.v[k])));
        store_vec(out + j, y);
    }, [&](size_t j) { out[j] = from_float<T>(gelu(to_float(inp[j]))); });
}
#define GELU_FWD_PARAMS(T) (T* out, const T* inp, int n)
EXPORT_F32_BF16(gelu_forward, GELU_FWD_PARAMS, (out, inp, n))

template <typename T>
__device__ void gelu_backward(T* dinp, const T* inp, const T* dout, int n) {
    elementwise<T>(n, aligned16(dinp) && aligned16(inp) && aligned16(dout), [&](size_t j) {
        Vec<T> x = load_vec(inp + j), g = load_vec(dout + j), d = load_vec(dinp + j);
#pragma unroll
        for (int k = 0; k < Vec<T>::N; k++) {
            d.v[k] = from_float<T>(to_float(d.v[k]) + gelu_grad(to_float(x.v[k])) * to_float(g.v[k]));
        }
        store_vec(dinp + j, d);
    }, [&](size_t j) { dinp[j] = from_float<T>(to_float(dinp[j]) + gelu_grad(to_float(inp[j])) * to_float(dout[j])); });
}
#define GELU_BWD_PARAMS(T) (T* dinp, const T* inp, const T* dout, int n)
EXPORT_F32_BF16(gelu_backward, GELU_BWD_PARAMS, (dinp, inp, dout, n))
