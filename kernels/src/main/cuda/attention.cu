// Causal multi-head self-attention in the flash-attention manner: the forward pass streams key/value
// tiles through shared memory with an online softmax and keeps only each row's log-sum-exp; the
// backward pass recomputes the probabilities from it. No T×T matrix is ever stored.
//
// Layout: qkv [B, T, 3C] (q | k | v, each split into NH heads of hs = C/NH channels), out and
// dout [B, T, C], lse [B, NH, T]. HS is a compile-time bound on hs (32, 64 or 128) that sizes the
// per-thread registers; the true hs may be smaller. One thread owns one query (or key) row; tiles
// hold fp32 rows padded by one so that threads walking their own rows hit distinct banks.
// This is the FMA path: CUDA cores only, any head size up to 128, fp32 or bf16 storage; it is the
// reference for the tensor-core kernels of attention_tc.cu (bf16, head size 64 or 128), which the
// backend prefers where they apply.
#include "common.cuh"

/** Rows per tile: 32 up to hs 64, 16 beyond so the four tiles of a backward kernel fit 48 KiB. */
template <int HS> struct AttnTile { static constexpr int value = HS <= 64 ? 32 : 16; };

/** tile[r, :hs] = row (row0 + r) of a head, or 0 past the sequence; base is row 0, rows `stride` apart. */
template <typename T, int HS, int TILE>
__device__ __forceinline__ void load_tile(float (*tile)[HS + 1], const T* base, size_t stride, int row0,
                                          int Tn, int hs) {
    for (int idx = threadIdx.x; idx < TILE * hs; idx += blockDim.x) {
        int r = idx / hs, i = idx % hs, t = row0 + r;
        tile[r][i] = t < Tn ? to_float(base[(size_t)t * stride + i]) : 0.f;
    }
}

/** Grid (ceil(T/TILE), B·NH), TILE threads. */
template <typename T, int HS>
__device__ void attention_forward(T* out, float* lse, const T* qkv, int Tn, int C, int NH) {
    constexpr int TILE = AttnTile<HS>::value;
    __shared__ float Ks[TILE][HS + 1], Vs[TILE][HS + 1];
    __shared__ float S[TILE][TILE + 1];  // this thread's scores live in row threadIdx.x
    int hs = C / NH, bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int q0 = blockIdx.x * TILE, tq = q0 + threadIdx.x;
    bool valid = tq < Tn;
    float scale = 1.f / sqrtf((float)hs);
    const T* base = qkv + (size_t)b * Tn * 3 * C + h * hs;
    float q[HS], acc[HS];
#pragma unroll
    for (int i = 0; i < HS; i++) {
        q[i] = valid && i < hs ? to_float(base[(size_t)tq * 3 * C + i]) : 0.f;
        acc[i] = 0.f;
    }
    float* sc = S[threadIdx.x];
    float m = -CUDART_INF_F, l = 0.f;
    int last = min(q0 + TILE, Tn) - 1;
    for (int k0 = 0; k0 <= last; k0 += TILE) {
        __syncthreads();
        load_tile<T, HS, TILE>(Ks, base + C, 3 * C, k0, Tn, hs);
        load_tile<T, HS, TILE>(Vs, base + 2 * C, 3 * C, k0, Tn, hs);
        __syncthreads();
        float tmax = -CUDART_INF_F;
        // The key loops stay rolled: unrolling them with the channel loops multiplies compile time.
#pragma unroll 1
        for (int j = 0; j < TILE; j++) {
            float dot = 0.f;
#pragma unroll
            for (int i = 0; i < HS; i++) if (i < hs) dot += q[i] * Ks[j][i];
            sc[j] = valid && k0 + j <= tq ? dot * scale : -CUDART_INF_F;
            tmax = fmaxf(tmax, sc[j]);
        }
        if (tmax == -CUDART_INF_F) continue;  // the whole tile lies after this query
        float mNew = fmaxf(m, tmax);
        float corr = expf(m - mNew);  // 0 on the first tile, where m = -inf
        l *= corr;
#pragma unroll
        for (int i = 0; i < HS; i++) acc[i] *= corr;
#pragma unroll 1
        for (int j = 0; j < TILE; j++) {
            float p = expf(sc[j] - mNew);
            l += p;
#pragma unroll
            for (int i = 0; i < HS; i++) if (i < hs) acc[i] += p * Vs[j][i];
        }
        m = mNew;
    }
    if (!valid) return;
    T* o = out + ((size_t)b * Tn + tq) * C + h * hs;
    float inv = 1.f / l;
#pragma unroll
    for (int i = 0; i < HS; i++) if (i < hs) o[i] = from_float<T>(acc[i] * inv);
    lse[(size_t)bh * Tn + tq] = m + logf(l);
}

/**
 * delta[b,h,t] = dout · out over the head's channels (= Σ_s P·dP), fp32 [B, NH, T]. One warp per
 * (b, t, h) row, its lanes striding over the channels, so a warp reads contiguous memory and
 * consecutive warps consecutive heads of one position. Blocks of THREADS (a multiple of 32) threads.
 */
template <typename T>
__device__ void attention_backward_delta(float* delta, const T* dout, const T* out, int B, int Tn, int C, int NH) {
    int hs = C / NH, lane = threadIdx.x & 31;
    size_t rows = (size_t)B * Tn * NH, warps = (size_t)gridDim.x * (blockDim.x >> 5);
    for (size_t w = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); w < rows; w += warps) {
        size_t bt = w / NH;  // row w is head h of position bt: channels [bt·C + h·hs, + hs)
        int h = (int)(w % NH), b = (int)(bt / Tn), t = (int)(bt % Tn);
        size_t o = bt * C + (size_t)h * hs;
        float acc = 0.f;
        for (int i = lane; i < hs; i += 32) acc += to_float(dout[o + i]) * to_float(out[o + i]);
        acc = warp_sum(acc);
        if (lane == 0) delta[((size_t)b * NH + h) * Tn + t] = acc;
    }
}
#define ATT_DELTA_PARAMS(T) (float* delta, const T* dout, const T* out, int B, int Tn, int C, int NH)
EXPORT_F32_BF16(attention_backward_delta, ATT_DELTA_PARAMS, (delta, dout, out, B, Tn, C, NH))

/**
 * dK and dV: one thread per key row s, streaming the query tiles that can see it (t >= s).
 * Grid (ceil(T/TILE), B·NH), TILE threads; each thread owns its rows, so no atomics.
 */
template <typename T, int HS>
__device__ void attention_backward_kv(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                                      int Tn, int C, int NH) {
    constexpr int TILE = AttnTile<HS>::value;
    __shared__ float Kown[TILE][HS + 1], Vown[TILE][HS + 1], Qs[TILE][HS + 1], dOs[TILE][HS + 1];
    __shared__ float lseS[TILE], deltaS[TILE];
    int hs = C / NH, bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int s0 = blockIdx.x * TILE, s = s0 + threadIdx.x;
    bool valid = s < Tn;
    float scale = 1.f / sqrtf((float)hs);
    const T* base = qkv + (size_t)b * Tn * 3 * C + h * hs;
    const T* dbase = dout + (size_t)b * Tn * C + h * hs;
    load_tile<T, HS, TILE>(Kown, base + C, 3 * C, s0, Tn, hs);
    load_tile<T, HS, TILE>(Vown, base + 2 * C, 3 * C, s0, Tn, hs);
    float dk[HS], dv[HS];
#pragma unroll
    for (int i = 0; i < HS; i++) dk[i] = dv[i] = 0.f;
    int me = threadIdx.x;
    for (int q0 = s0; q0 < Tn; q0 += TILE) {
        __syncthreads();
        load_tile<T, HS, TILE>(Qs, base, 3 * C, q0, Tn, hs);
        load_tile<T, HS, TILE>(dOs, dbase, C, q0, Tn, hs);
        int t = q0 + threadIdx.x;
        lseS[threadIdx.x] = t < Tn ? lse[(size_t)bh * Tn + t] : 0.f;
        deltaS[threadIdx.x] = t < Tn ? delta[(size_t)bh * Tn + t] : 0.f;
        __syncthreads();
#pragma unroll 1
        for (int j = 0; j < TILE; j++) {
            int tq = q0 + j;
            if (!valid || tq >= Tn || tq < s) continue;
            float dot = 0.f, dp = 0.f;
#pragma unroll
            for (int i = 0; i < HS; i++) {
                if (i < hs) {
                    dot += Qs[j][i] * Kown[me][i];
                    dp += dOs[j][i] * Vown[me][i];
                }
            }
            float p = expf(dot * scale - lseS[j]);
            float ds = p * (dp - deltaS[j]) * scale;
#pragma unroll
            for (int i = 0; i < HS; i++) {
                if (i < hs) {
                    dv[i] += p * dOs[j][i];
                    dk[i] += ds * Qs[j][i];
                }
            }
        }
    }
    if (!valid) return;
    T* dkRow = dqkv + ((size_t)b * Tn + s) * 3 * C + C + h * hs;
    T* dvRow = dkRow + C;
#pragma unroll
    for (int i = 0; i < HS; i++) {
        if (i < hs) {
            dkRow[i] = from_float<T>(to_float(dkRow[i]) + dk[i]);
            dvRow[i] = from_float<T>(to_float(dvRow[i]) + dv[i]);
        }
    }
}

/** dQ: one thread per query row, streaming the key tiles it sees (s <= t). Grid and block as forward. */
template <typename T, int HS>
__device__ void attention_backward_q(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta,
                                     int Tn, int C, int NH) {
    constexpr int TILE = AttnTile<HS>::value;
    __shared__ float Qown[TILE][HS + 1], dOown[TILE][HS + 1], Ks[TILE][HS + 1], Vs[TILE][HS + 1];
    int hs = C / NH, bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int q0 = blockIdx.x * TILE, tq = q0 + threadIdx.x;
    bool valid = tq < Tn;
    float scale = 1.f / sqrtf((float)hs);
    const T* base = qkv + (size_t)b * Tn * 3 * C + h * hs;
    load_tile<T, HS, TILE>(Qown, base, 3 * C, q0, Tn, hs);
    load_tile<T, HS, TILE>(dOown, dout + (size_t)b * Tn * C + h * hs, C, q0, Tn, hs);
    float myLse = valid ? lse[(size_t)bh * Tn + tq] : 0.f;
    float myDelta = valid ? delta[(size_t)bh * Tn + tq] : 0.f;
    float dq[HS];
#pragma unroll
    for (int i = 0; i < HS; i++) dq[i] = 0.f;
    int me = threadIdx.x;
    int last = min(q0 + TILE, Tn) - 1;
    for (int k0 = 0; k0 <= last; k0 += TILE) {
        __syncthreads();
        load_tile<T, HS, TILE>(Ks, base + C, 3 * C, k0, Tn, hs);
        load_tile<T, HS, TILE>(Vs, base + 2 * C, 3 * C, k0, Tn, hs);
        __syncthreads();
#pragma unroll 1
        for (int j = 0; j < TILE; j++) {
            if (!valid || k0 + j > tq) continue;
            float dot = 0.f, dp = 0.f;
#pragma unroll
            for (int i = 0; i < HS; i++) {
                if (i < hs) {
                    dot += Qown[me][i] * Ks[j][i];
                    dp += dOown[me][i] * Vs[j][i];
                }
            }
            float p = expf(dot * scale - myLse);
            float ds = p * (dp - myDelta) * scale;
#pragma unroll
            for (int i = 0; i < HS; i++) if (i < hs) dq[i] += ds * Ks[j][i];
        }
    }
    if (!valid) return;
    T* dqRow = dqkv + ((size_t)b * Tn + tq) * 3 * C + h * hs;
#pragma unroll
    for (int i = 0; i < HS; i++) if (i < hs) dqRow[i] = from_float<T>(to_float(dqRow[i]) + dq[i]);
}

// Entry points "<kernel>_<f32|bf16>_hs<HS>".
#define ATT_EXPORT(T, tname, HS)                                                                            \
    extern "C" __global__ void attention_forward_##tname##_hs##HS(T* out, float* lse, const T* qkv, int Tn,  \
                                                                  int C, int NH) {                          \
        attention_forward<T, HS>(out, lse, qkv, Tn, C, NH);                                                 \
    }                                                                                                       \
    extern "C" __global__ void attention_backward_kv_##tname##_hs##HS(                                      \
        T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta, int Tn, int C, int NH) { \
        attention_backward_kv<T, HS>(dqkv, dout, qkv, lse, delta, Tn, C, NH);                               \
    }                                                                                                       \
    extern "C" __global__ void attention_backward_q_##tname##_hs##HS(                                       \
        T* dqkv, const T* dout, const T* qkv, const float* lse, const float* delta, int Tn, int C, int NH) { \
        attention_backward_q<T, HS>(dqkv, dout, qkv, lse, delta, Tn, C, NH);                                \
    }
ATT_EXPORT(float, f32, 32)
ATT_EXPORT(float, f32, 64)
ATT_EXPORT(float, f32, 128)
ATT_EXPORT(bf16, bf16, 32)
ATT_EXPORT(bf16, bf16, 64)
ATT_EXPORT(bf16, bf16, 128)
