// Residual add, forward and backward.
#include "common.cuh"

template <typename T>
__device__ void residual_forward(T* out, const T* a, const T* b, int n) {
    GRID_STRIDE(i, n) out[i] = from_float<T>(to_float(a[i]) + to_float(b[i]));
}
#define RES_FWD_PARAMS(T) (T* out, const T* a, const T* b, int n)
EXPORT_F32_BF16(residual_forward, RES_FWD_PARAMS, (out, a, b, n))

template <typename T>
__device__ void residual_backward(T* da, T* db, const T* dout, int n) {
    GRID_STRIDE(i, n) {
        float d = to_float(dout[i]);
        da[i] = from_float<T>(to_float(da[i]) + d);
        db[i] = from_float<T>(to_float(db[i]) + d);
    }
}
#define RES_BWD_PARAMS(T) (T* da, T* db, const T* dout, int n)
EXPORT_F32_BF16(residual_backward, RES_BWD_PARAMS, (da, db, dout, n))
