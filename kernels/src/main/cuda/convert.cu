// fp32 <-> bf16 conversion, e.g. to round fp32 master weights into bf16 parameters. 16-byte loads of
// fp32, 8-byte stores of bf16 (or the reverse), where the pointers allow.
#include "common.cuh"

extern "C" __global__ void convert_f32_to_bf16(bf16* dst, const float* src, size_t n) {
    elementwise<float>(n, aligned16(src) && ((uintptr_t)dst & 7) == 0, [&](size_t j) {
        Vec<float> x = load_vec(src + j);
        __nv_bfloat162 lo = __floats2bfloat162_rn(x.v[0], x.v[1]), hi = __floats2bfloat162_rn(x.v[2], x.v[3]);
        uint2 packed = {*reinterpret_cast<uint32_t*>(&lo), *reinterpret_cast<uint32_t*>(&hi)};
        *reinterpret_cast<uint2*>(dst + j) = packed;
    }, [&](size_t j) { dst[j] = __float2bfloat16_rn(src[j]); });
}

extern "C" __global__ void convert_bf16_to_f32(float* dst, const bf16* src, size_t n) {
    elementwise<float>(n, aligned16(dst) && ((uintptr_t)src & 7) == 0, [&](size_t j) {
        uint2 packed = *reinterpret_cast<const uint2*>(src + j);
        __nv_bfloat162 lo = *reinterpret_cast<__nv_bfloat162*>(&packed.x), hi = *reinterpret_cast<__nv_bfloat162*>(&packed.y);
        Vec<float> x;
        x.v[0] = __low2float(lo);
        x.v[1] = __high2float(lo);
        x.v[2] = __low2float(hi);
        x.v[3] = __high2float(hi);
        store_vec(dst + j, x);
    }, [&](size_t j) { dst[j] = __bfloat162float(src[j]); });
}
