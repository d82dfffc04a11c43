// fp32 <-> bf16 conversion, e.g. to round fp32 master weights into bf16 parameters.
#include "common.cuh"

extern "C" __global__ void convert_f32_to_bf16(bf16* dst, const float* src, size_t n) {
    GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}

extern "C" __global__ void convert_bf16_to_f32(float* dst, const bf16* src, size_t n) {
    GRID_STRIDE(i, n) dst[i] = __bfloat162float(src[i]);
}
