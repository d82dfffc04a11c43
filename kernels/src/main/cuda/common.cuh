// Shared helpers of Anvil's CUDA kernels: element conversion, reductions and error reporting.
// Every kernel loads its elements as float and accumulates in fp32 (or wider), whatever the
// storage type, so FP32 and BF16 buffers share one templated body.
#pragma once

#include <cuda_bf16.h>
#include <math_constants.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }

/** Grid-stride loop over [0, n): kernels are launched with a capped grid and loop over the rest. */
#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n); \
         i += (size_t)gridDim.x * blockDim.x)

/** 16 bytes of T (4 floats or 8 bf16), for 128-bit loads and stores. */
template <typename T> struct alignas(16) Vec {
    static constexpr int N = 16 / sizeof(T);
    T v[N];
};

template <typename T> __device__ __forceinline__ Vec<T> load_vec(const T* p) {
    Vec<T> r;
    *reinterpret_cast<int4*>(&r) = *reinterpret_cast<const int4*>(p);
    return r;
}

template <typename T> __device__ __forceinline__ void store_vec(T* p, const Vec<T>& v) {
    *reinterpret_cast<int4*>(p) = *reinterpret_cast<const int4*>(&v);
}

__device__ __forceinline__ bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

/**
 * The element-wise kernels' loop: pack(j) for each 16-byte pack of elements [j, j + Vec<T>::N) when
 * `vector` (every pointer 16-byte aligned), then one(j) for each element left (all of them
 * otherwise). A warp's threads take adjacent packs, so it moves 512 contiguous bytes at a time.
 */
template <typename T, typename Pack, typename One>
__device__ __forceinline__ void elementwise(size_t n, bool vector, Pack pack, One one) {
    constexpr int V = Vec<T>::N;
    size_t packs = vector ? n / V : 0;
    GRID_STRIDE(p, packs) pack(p * V);
    GRID_STRIDE(t, n - packs * V) one(packs * V + t);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/** Sum over a block whose size is a multiple of 32; every thread gets the total. */
template <typename A>
__device__ A block_sum(A v) {
    __shared__ A partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // a previous call may still be reading partial[]
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < warps ? partial[lane] : (A)0;
    return warp_sum(v);
}

// Codes the host turns into exceptions when it next synchronizes (see CudaErrorFlag.java).
#define ANVIL_ERR_TOKEN 1
#define ANVIL_ERR_TARGET 2

/** Records the first bad input of a run: {code, position, value}; later reports are dropped. */
__device__ __forceinline__ void report_error(int* errors, int code, int position, int value) {
    if (atomicCAS(errors, 0, code) == 0) {
        errors[1] = position;
        errors[2] = value;
    }
}

// Kernels are templates; EXPORT_F32_BF16 defines one unmangled entry point per storage type, which
// the Java side looks up by name ("<op>_f32", "<op>_bf16"). PARAMS is a macro of the element type
// that spells the parameter list; ARGS forwards them.
#define EXPORT_F32_BF16(name, PARAMS, ARGS)                                   \
    extern "C" __global__ void name##_f32 PARAMS(float) { name<float> ARGS; } \
    extern "C" __global__ void name##_bf16 PARAMS(bf16) { name<bf16> ARGS; }
