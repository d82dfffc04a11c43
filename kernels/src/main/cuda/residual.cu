// Residual add, forward and backward.
#include "common.cuh"

template <typename T>
__device__ void residual_forward(T* out, const T* a, const T* b, int n) {
    elementwise<T>(n, aligned16(out) && aligned16(a) && aligned16(b), [&](size_t j) {
        Vec<T> x = load_vec(a + j), y = load_vec(b + j), o;
#pragma unroll
        for (int k = 0; k < Vec<T>::N; k++) o.v[k] = from_float<T>(to_float(x.v[k]) + to_float(y.v[k]));
        store_vec(out + j, o);
    }, [&](size_t j) { out[j] = from_float<T>(to_float(a[j]) + to_float(b[j])); });
}
#define RES_FWD_PARAMS(T) (T* out, const T* a, const T* b, int n)
EXPORT_F32_BF16(residual_forward, RES_FWD_PARAMS, (out, a, b, n))

template <typename T>
__device__ void residual_backward(T* da, T* db, const T* dout, int n) {
    elementwise<T>(n, aligned16(da) && aligned16(db) && aligned16(dout), [&](size_t j) {
        Vec<T> g = load_vec(dout + j), x = load_vec(da + j), y = load_vec(db + j);
#pragma unroll
        for (int k = 0; k < Vec<T>::N; k++) {
            float d = to_float(g.v[k]);
            x.v[k] = from_float<T>(to_float(x.v[k]) + d);
            y.v[k] = from_float<T>(to_float(y.v[k]) + d);
        }
        store_vec(da + j, x);
        store_vec(db + j, y);
    }, [&](size_t j) {
        float d = to_float(dout[j]);
        da[j] = from_float<T>(to_float(da[j]) + d);
        db[j] = from_float<T>(to_float(db[j]) + d);
    });
}
#define RES_BWD_PARAMS(T) (T* da, T* db, const T* dout, int n)
EXPORT_F32_BF16(residual_backward, RES_BWD_PARAMS, (da, db, dout, n))
