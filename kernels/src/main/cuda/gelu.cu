// GELU with the tanh approximation (GPT-2's gelu_new), forward and backward.
#include "common.cuh"

#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)
#define GELU_K 0.044715f

template <typename T>
__device__ void gelu_forward(T* out, const T* inp, int n) {
    GRID_STRIDE(i, n) {
        float x = to_float(inp[i]);
        float u = GELU_SCALE * (x + GELU_K * x * x * x);
        out[i] = from_float<T>(0.5f * x * (1.f + tanhf(u)));
    }
}
#define GELU_FWD_PARAMS(T) (T* out, const T* inp, int n)
EXPORT_F32_BF16(gelu_forward, GELU_FWD_PARAMS, (out, inp, n))

template <typename T>
__device__ void gelu_backward(T* dinp, const T* inp, const T* dout, int n) {
    GRID_STRIDE(i, n) {
        float x = to_float(inp[i]);
        float u = GELU_SCALE * (x + GELU_K * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.f - th * th;
        float local = 0.5f * (1.f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.f + 3.f * GELU_K * x * x);
        dinp[i] = from_float<T>(to_float(dinp[i]) + local * to_float(dout[i]));
    }
}
#define GELU_BWD_PARAMS(T) (T* dinp, const T* inp, const T* dout, int n)
EXPORT_F32_BF16(gelu_backward, GELU_BWD_PARAMS, (dinp, inp, dout, n))
