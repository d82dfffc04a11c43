// Causal flash attention on tensor cores, FlashAttention-2 style: bf16 storage, bf16 mma.sync tiles
// (m16n8k16, fp32 accumulators), key/value (or query/dout) tiles streamed through shared memory by
// cp.async, two stages deep, online softmax, tiles wholly after the diagonal never visited, the
// log-sum-exp of every row saved for the backward pass. No T×T matrix exists anywhere.
//
// Layout as attention.cu: qkv [B, T, 3C] (q | k | v, NH heads of HS channels each), out and dout
// [B, T, C], lse and delta [B, NH, T] fp32. HS is exactly 64 or 128 here; the host checks that C is a
// multiple of 8 and every pointer 16-byte aligned (cp.async moves 16-byte chunks), else it takes the
// FMA path of attention.cu.
//
// Three kernels, each of 4 warps, each warp owning 16 rows of its block's tile:
//   attention_tc_forward    grid (query tiles of 64, B·NH): O and lse.
//   attention_tc_backward_kv grid (key tiles of 64, B·NH): dK and dV, streaming the query tiles that
//                           see the keys (queries >= keys).
//   attention_tc_backward_q grid (query tiles of 64, B·NH): dQ, streaming the key tiles each query
//                           sees. A pass of its own instead of fp32 atomics from the kv kernel: it
//                           recomputes S and dP (two more tile products) but every gradient element
//                           is summed in one fixed order, so the result is the same on every run.
// delta = rowsum(dO ∘ O) comes from attention_backward_delta (attention.cu), one warp per row.
//
// Fragments of mma.m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16"), g = lane / 4, q = lane % 4:
//   A (16×16, row-major): reg0 = A[g][2q..2q+1], reg1 = A[g+8][2q..], reg2 = A[g][2q+8..], reg3 = A[g+8][2q+8..]
//   B (16×8, k × n):      reg0 = B[2q..2q+1][g], reg1 = B[2q+8..2q+9][g]
//   C (16×8 fp32):        c0,c1 = C[g][2q..2q+1], c2,c3 = C[g+8][2q..2q+1]
// so the C fragments of two adjacent n-tiles are, packed to bf16 pairs, the A fragment of one k-step:
// that is how P (and dS) go from one product into the next without leaving registers.
#include "common.cuh"

namespace flash {

constexpr int WARPS = 4;
constexpr int THREADS = 32 * WARPS;
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

/** Row stride of a shared tile in elements: 16 bytes of padding put the 8 rows an ldmatrix reads in distinct banks. */
template <int HS> struct Ld { static constexpr int value = HS + 8; };

// Tile shapes. The forward and dQ kernels hold 64 query rows (16 per warp); the dK/dV kernel 64 key
// rows. At HS = 128 the streamed tiles are 32 rows, so that accumulators and score tiles stay in
// registers without spilling.
template <int HS> struct Forward {
    static constexpr int BR = 64, BC = 64;
    static constexpr int SMEM = (BR + 4 * BC) * Ld<HS>::value * 2;  // Q, then 2 stages of K and V
};
template <int HS> struct BackwardKv {
    static constexpr int BC = 64, BR = HS == 128 ? 32 : 64;
    // K and V, then 2 stages of Q and dO, then 2 stages of lse and delta
    static constexpr int SMEM = (2 * BC + 4 * BR) * Ld<HS>::value * 2 + 4 * BR * 4;
};
template <int HS> struct BackwardQ {
    static constexpr int BR = 64, BC = HS == 128 ? 32 : 64;
    static constexpr int SMEM = (2 * BR + 4 * BC) * Ld<HS>::value * 2;  // Q and dO, then 2 stages of K and V
};

__device__ __forceinline__ uint32_t smem_address(const void* p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/** 16 bytes global -> shared, asynchronously; zeros instead when !valid (src is not read then). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}

/** 4 bytes global -> shared, asynchronously; zero when !valid. */
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_address(dst)), "l"(src),
                 "r"(valid ? 4 : 0));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

/** Waits until at most N of this thread's committed groups are still in flight. */
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p)));
}

/** d += a·b for one 16×8×16 tile: bf16 inputs, fp32 accumulators. */
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/** Two floats as a bf16 pair, lo in the low half (the lower column of a fragment). */
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// Shared-memory addresses each lane hands ldmatrix.x4, for a tile stored row-major with row stride LD:
/** A fragment of the 16×16 block at (row0, k0). */
template <int LD> __device__ __forceinline__ const bf16* a_frag(const bf16* tile, int row0, int k0, int lane) {
    return tile + (row0 + (lane & 15)) * LD + k0 + (lane >> 4) * 8;
}
/** B fragments of n-tiles n0 and n0+8 at k-step k0, B[k][n] = tile[n][k] (e.g. K in Q·Kᵀ): regs b0,b1 | b0,b1. */
template <int LD> __device__ __forceinline__ const bf16* b_frag_rows(const bf16* tile, int n0, int k0, int lane) {
    return tile + (n0 + (lane & 7) + ((lane >> 4) << 3)) * LD + k0 + ((lane >> 3) & 1) * 8;
}
/** B fragments of n-tiles n0 and n0+8 at k-step k0, B[k][n] = tile[k][n] (e.g. V in P·V), for ldmatrix .trans. */
template <int LD> __device__ __forceinline__ const bf16* b_frag_cols(const bf16* tile, int n0, int k0, int lane) {
    return tile + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + n0 + (lane >> 4) * 8;
}

/**
 * Queues ROWS rows [row0, row0 + ROWS) of a head's matrix (rows `stride` elements apart in global
 * memory) into a shared tile of row stride Ld<HS>; rows at or past T are zero-filled, so that no
 * garbage (possibly NaN) enters a product, even one whose result is masked.
 */
template <int ROWS, int HS>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* head, size_t stride, int row0, int T) {
    constexpr int CHUNKS = HS / 8;  // 16-byte chunks per row
    static_assert(ROWS * CHUNKS % THREADS == 0, "every thread queues the same number of chunks");
#pragma unroll
    for (int i = 0; i < ROWS * CHUNKS / THREADS; i++) {
        int chunk = threadIdx.x + i * THREADS, r = chunk / CHUNKS, k = (chunk % CHUNKS) * 8, t = row0 + r;
        bool valid = t < T;
        cp_async16(tile + r * Ld<HS>::value + k, head + (size_t)(valid ? t : 0) * stride + k, valid);
    }
}

/** Adds v (a fragment row pair, lo and hi) into two adjacent bf16 of global memory. */
__device__ __forceinline__ void add_bf16x2(bf16* dst, float lo, float hi) {
    __nv_bfloat162 old = *reinterpret_cast<__nv_bfloat162*>(dst);
    *reinterpret_cast<uint32_t*>(dst) = pack(__bfloat162float(old.x) + lo, __bfloat162float(old.y) + hi);
}


/** acc[n] += a·B over the NT n-tiles of one k-step k0, B[k][n] = tile[n][k] (e.g. K in Q·Kᵀ). */
template <int LD, int NT>
__device__ __forceinline__ void mma_tile_rows(float (&acc)[NT][4], const uint32_t (&a)[4], const bf16* tile, int k0,
                                              int lane) {
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, b_frag_rows<LD>(tile, n * 8, k0, lane));
        mma(acc[n], a, b[0], b[1]);
        mma(acc[n + 1], a, b[2], b[3]);
    }
}

/** acc[n] += a·B over the NT n-tiles of one k-step k0, B[k][n] = tile[k][n] (e.g. V in P·V). */
template <int LD, int NT>
__device__ __forceinline__ void mma_tile_cols(float (&acc)[NT][4], const uint32_t (&a)[4], const bf16* tile, int k0,
                                              int lane) {
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, b_frag_cols<LD>(tile, n * 8, k0, lane));
        mma(acc[n], a, b[0], b[1]);
        mma(acc[n + 1], a, b[2], b[3]);
    }
}

/** acc += A·B over the head's KS k-steps: A = the 16 rows of aTile from row0, B[k][n] = bTile[n][k]. */
template <int LD, int KS, int NT>
__device__ __forceinline__ void mma_rows_rows(float (&acc)[NT][4], const bf16* aTile, int row0, const bf16* bTile,
                                              int lane) {
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
        uint32_t a[4];
        ldmatrix_x4(a, a_frag<LD>(aTile, row0, ks * 16, lane));
        mma_tile_rows<LD>(acc, a, bTile, ks * 16, lane);
    }
}

/** The A fragment of k-step kk from the C fragments of n-tiles 2kk and 2kk+1, rounded to bf16 (see the top). */
template <int NT>
__device__ __forceinline__ void a_from_c(uint32_t (&a)[4], const float (&c)[NT][4], int kk) {
    a[0] = pack(c[2 * kk][0], c[2 * kk][1]);
    a[1] = pack(c[2 * kk][2], c[2 * kk][3]);
    a[2] = pack(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[3] = pack(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

/** Zeroes NT fragments of accumulators. */
template <int NT> __device__ __forceinline__ void clear(float (&acc)[NT][4]) {
#pragma unroll
    for (int n = 0; n < NT; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
}

// ---------------------------------------------------------------------------------------------------

template <int HS>
__device__ void forward(bf16* out, float* lse, const bf16* qkv, int T, int C, int NH) {
    constexpr int BR = Forward<HS>::BR, BC = Forward<HS>::BC, LD = Ld<HS>::value;
    constexpr int KS = HS / 16;   // k-steps over the head's channels
    constexpr int NS = BC / 8;    // n-tiles of a score row
    constexpr int NO = HS / 8;    // n-tiles of an output row
    extern __shared__ __align__(16) unsigned char smem[];
    bf16* sQ = reinterpret_cast<bf16*>(smem);
    bf16* sK = sQ + BR * LD;      // [2][BC][LD]
    bf16* sV = sK + 2 * BC * LD;  // [2][BC][LD]

    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int q0 = (gridDim.x - 1 - blockIdx.x) * BR;  // the longest rows (most key tiles) start first
    size_t stride = 3 * (size_t)C;
    const bf16* Qg = qkv + (size_t)b * T * stride + (size_t)h * HS;
    const bf16* Kg = Qg + C;
    const bf16* Vg = Qg + 2 * C;
    int tiles = (min(q0 + BR, T) - 1) / BC + 1;  // key tiles up to the diagonal; the rest are all masked
    int row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    float scale = rsqrtf((float)HS) * LOG2E;     // scores go into the log2 domain: exp2 is one instruction

    load_tile<BR, HS>(sQ, Qg, stride, q0, T);
    load_tile<BC, HS>(sK, Kg, stride, 0, T);
    load_tile<BC, HS>(sV, Vg, stride, 0, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t qf[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ks++) ldmatrix_x4(qf[ks], a_frag<LD>(sQ, warp * 16, ks * 16, lane));

    float o[NO][4];
    clear(o);
    float m[2] = {-CUDART_INF_F, -CUDART_INF_F};  // running row max (log2 domain)
    float l[2] = {0.f, 0.f};                      // this thread's share of the running row sum

    for (int j = 0; j < tiles; j++) {
        const bf16* kt = sK + (j & 1) * BC * LD;
        const bf16* vt = sV + (j & 1) * BC * LD;
        if (j + 1 < tiles) {  // the other stage was last read in iteration j - 1, which ended in a barrier
            load_tile<BC, HS>(sK + ((j + 1) & 1) * BC * LD, Kg, stride, (j + 1) * BC, T);
            load_tile<BC, HS>(sV + ((j + 1) & 1) * BC * LD, Vg, stride, (j + 1) * BC, T);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();

        float s[NS][4];
        clear(s);
#pragma unroll
        for (int ks = 0; ks < KS; ks++) mma_tile_rows<LD>(s, qf[ks], kt, ks * 16, lane);

        int k0 = j * BC;
        bool diagonal = k0 + BC - 1 > q0;  // some key of the tile lies after some query of the block
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int n = 0; n < NS; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = k0 + n * 8 + 2 * q + (e & 1);
                float v = s[n][e] * scale;
                if (diagonal && key > row[e >> 1]) v = -CUDART_INF_F;
                s[n][e] = v;
                mx[e >> 1] = fmaxf(mx[e >> 1], v);
            }
        }
        float base[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            // the 4 lanes of a group hold one row between them
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            base[r] = mx[r] == -CUDART_INF_F ? 0.f : mx[r];  // a row with nothing unmasked yet stays at 0
            float corr = exp2f(m[r] - base[r]);             // 0 while m = -inf
            m[r] = mx[r];
            l[r] *= corr;
#pragma unroll
            for (int n = 0; n < NO; n++) {
                o[n][2 * r] *= corr;
                o[n][2 * r + 1] *= corr;
            }
        }
#pragma unroll
        for (int n = 0; n < NS; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float p = exp2f(s[n][e] - base[e >> 1]);
                s[n][e] = p;
                l[e >> 1] += p;
            }
        }
        // O += P·V: P's C fragments are the A fragments of the product, 16 keys per k-step.
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) {
            uint32_t pa[4];
            a_from_c(pa, s, kk);
            mma_tile_cols<LD>(o, pa, vt, kk * 16, lane);
        }
        __syncthreads();  // every warp is done with this stage before the next iteration refills it
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        if (row[r] >= T) continue;
        float inv = 1.f / l[r];
        bf16* orow = out + ((size_t)b * T + row[r]) * C + (size_t)h * HS + 2 * q;
#pragma unroll
        for (int n = 0; n < NO; n++) {
            *reinterpret_cast<uint32_t*>(orow + n * 8) = pack(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
        }
        if (q == 0) lse[(size_t)bh * T + row[r]] = (m[r] + log2f(l[r])) * LN2;
    }
}

// ---------------------------------------------------------------------------------------------------

template <int HS>
__device__ void backward_kv(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* delta,
                            int T, int C, int NH) {
    constexpr int BC = BackwardKv<HS>::BC, BR = BackwardKv<HS>::BR, LD = Ld<HS>::value;
    constexpr int KS = HS / 16;  // k-steps over channels
    constexpr int NQ = BR / 8;   // n-tiles of a (transposed) score row: queries
    constexpr int ND = HS / 8;   // n-tiles of a gradient row: channels
    extern __shared__ __align__(16) unsigned char smem[];
    bf16* sK = reinterpret_cast<bf16*>(smem);
    bf16* sV = sK + BC * LD;
    bf16* sQ = sV + BC * LD;       // [2][BR][LD]
    bf16* sdO = sQ + 2 * BR * LD;  // [2][BR][LD]
    float* sLse = reinterpret_cast<float*>(sdO + 2 * BR * LD);  // [2][BR]
    float* sDelta = sLse + 2 * BR;                              // [2][BR]

    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int k0 = blockIdx.x * BC;  // low key tiles see the most queries, and come first
    size_t stride = 3 * (size_t)C;
    const bf16* Qg = qkv + (size_t)b * T * stride + (size_t)h * HS;
    const bf16* Kg = Qg + C;
    const bf16* Vg = Qg + 2 * C;
    const bf16* dOg = dout + (size_t)b * T * C + (size_t)h * HS;
    const float* lseRow = lse + (size_t)bh * T;
    const float* deltaRow = delta + (size_t)bh * T;
    int key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};
    float scale = rsqrtf((float)HS);
    int first = k0 / BR, tiles = (T + BR - 1) / BR;  // query tiles from the one holding key k0 on

    auto load_queries = [&](int i, int stage) {
        load_tile<BR, HS>(sQ + stage * BR * LD, Qg, stride, i * BR, T);
        load_tile<BR, HS>(sdO + stage * BR * LD, dOg, C, i * BR, T);
        if (threadIdx.x < BR) {
            int t = i * BR + threadIdx.x;
            bool valid = t < T;
            cp_async4(sLse + stage * BR + threadIdx.x, lseRow + (valid ? t : 0), valid);
            cp_async4(sDelta + stage * BR + threadIdx.x, deltaRow + (valid ? t : 0), valid);
        }
    };
    load_tile<BC, HS>(sK, Kg, stride, k0, T);
    load_tile<BC, HS>(sV, Vg, stride, k0, T);
    load_queries(first, first & 1);
    cp_async_commit();

    float dk[ND][4], dv[ND][4];
    clear(dk);
    clear(dv);

    for (int i = first; i < tiles; i++) {
        int stage = i & 1;
        if (i + 1 < tiles) {
            load_queries(i + 1, stage ^ 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const bf16* qt = sQ + stage * BR * LD;
        const bf16* dot = sdO + stage * BR * LD;
        const float* lt = sLse + stage * BR;
        const float* dt = sDelta + stage * BR;
        int q0 = i * BR;

        // Sᵀ = K·Qᵀ (this warp's 16 keys × BR queries), then Pᵀ = exp(Sᵀ·scale - lse[query]).
        float p[NQ][4];
        clear(p);
        mma_rows_rows<LD, KS>(p, sK, warp * 16, qt, lane);
#pragma unroll
        for (int n = 0; n < NQ; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int c = n * 8 + 2 * q + (e & 1), t = q0 + c;
                bool seen = t < T && t >= key[e >> 1];
                p[n][e] = seen ? exp2f((p[n][e] * scale - lt[c]) * LOG2E) : 0.f;
            }
        }
        // dV += Pᵀ·dO
#pragma unroll
        for (int kk = 0; kk < BR / 16; kk++) {
            uint32_t pa[4];
            a_from_c(pa, p, kk);
            mma_tile_cols<LD>(dv, pa, dot, kk * 16, lane);
        }
        // dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ ∘ (dPᵀ - delta[query]) (the softmax scale is applied to dK at the end)
        float ds[NQ][4];
        clear(ds);
        mma_rows_rows<LD, KS>(ds, sV, warp * 16, dot, lane);
#pragma unroll
        for (int n = 0; n < NQ; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) ds[n][e] = p[n][e] * (ds[n][e] - dt[n * 8 + 2 * q + (e & 1)]);
        }
        // dK += dSᵀ·Q
#pragma unroll
        for (int kk = 0; kk < BR / 16; kk++) {
            uint32_t sa[4];
            a_from_c(sa, ds, kk);
            mma_tile_cols<LD>(dk, sa, qt, kk * 16, lane);
        }
        __syncthreads();  // this stage is refilled in the next iteration
    }

    // Each key row belongs to this block alone: add into dqkv without atomics.
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (key[r] >= T) continue;
        bf16* dkRow = dqkv + ((size_t)b * T + key[r]) * stride + C + (size_t)h * HS + 2 * q;
        bf16* dvRow = dkRow + C;
#pragma unroll
        for (int n = 0; n < ND; n++) {
            add_bf16x2(dkRow + n * 8, dk[n][2 * r] * scale, dk[n][2 * r + 1] * scale);
            add_bf16x2(dvRow + n * 8, dv[n][2 * r], dv[n][2 * r + 1]);
        }
    }
}

// ---------------------------------------------------------------------------------------------------

template <int HS>
__device__ void backward_q(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* delta,
                           int T, int C, int NH) {
    constexpr int BR = BackwardQ<HS>::BR, BC = BackwardQ<HS>::BC, LD = Ld<HS>::value;
    constexpr int KS = HS / 16;  // k-steps over channels
    constexpr int NK = BC / 8;   // n-tiles of a score row: keys
    constexpr int ND = HS / 8;   // n-tiles of a gradient row: channels
    extern __shared__ __align__(16) unsigned char smem[];
    bf16* sQ = reinterpret_cast<bf16*>(smem);
    bf16* sdO = sQ + BR * LD;
    bf16* sK = sdO + BR * LD;     // [2][BC][LD]
    bf16* sV = sK + 2 * BC * LD;  // [2][BC][LD]

    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int q0 = (gridDim.x - 1 - blockIdx.x) * BR;  // the longest rows first
    size_t stride = 3 * (size_t)C;
    const bf16* Qg = qkv + (size_t)b * T * stride + (size_t)h * HS;
    const bf16* Kg = Qg + C;
    const bf16* Vg = Qg + 2 * C;
    const bf16* dOg = dout + (size_t)b * T * C + (size_t)h * HS;
    int row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    float rowLse[2], rowDelta[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        bool valid = row[r] < T;
        rowLse[r] = valid ? lse[(size_t)bh * T + row[r]] * LOG2E : 0.f;
        rowDelta[r] = valid ? delta[(size_t)bh * T + row[r]] : 0.f;
    }
    float scale = rsqrtf((float)HS);
    int tiles = (min(q0 + BR, T) - 1) / BC + 1;

    load_tile<BR, HS>(sQ, Qg, stride, q0, T);
    load_tile<BR, HS>(sdO, dOg, C, q0, T);
    load_tile<BC, HS>(sK, Kg, stride, 0, T);
    load_tile<BC, HS>(sV, Vg, stride, 0, T);
    cp_async_commit();

    float dq[ND][4];
    clear(dq);

    for (int j = 0; j < tiles; j++) {
        const bf16* kt = sK + (j & 1) * BC * LD;
        const bf16* vt = sV + (j & 1) * BC * LD;
        if (j + 1 < tiles) {
            load_tile<BC, HS>(sK + ((j + 1) & 1) * BC * LD, Kg, stride, (j + 1) * BC, T);
            load_tile<BC, HS>(sV + ((j + 1) & 1) * BC * LD, Vg, stride, (j + 1) * BC, T);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();

        // S = Q·Kᵀ and dP = dO·Vᵀ for this warp's 16 queries × BC keys
        float p[NK][4], ds[NK][4];
        clear(p);
        clear(ds);
        mma_rows_rows<LD, KS>(p, sQ, warp * 16, kt, lane);
        mma_rows_rows<LD, KS>(ds, sdO, warp * 16, vt, lane);
        // P = exp(S·scale - lse), masked after the diagonal; dS = P ∘ (dP - delta)
        int k0 = j * BC;
#pragma unroll
        for (int n = 0; n < NK; n++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int r = e >> 1, key = k0 + n * 8 + 2 * q + (e & 1);
                float pe = key <= row[r] ? exp2f(p[n][e] * scale * LOG2E - rowLse[r]) : 0.f;
                ds[n][e] = pe * (ds[n][e] - rowDelta[r]);
            }
        }
        // dQ += dS·K
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) {
            uint32_t sa[4];
            a_from_c(sa, ds, kk);
            mma_tile_cols<LD>(dq, sa, kt, kk * 16, lane);
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (row[r] >= T) continue;
        bf16* dqRow = dqkv + ((size_t)b * T + row[r]) * stride + (size_t)h * HS + 2 * q;
#pragma unroll
        for (int n = 0; n < ND; n++) add_bf16x2(dqRow + n * 8, dq[n][2 * r] * scale, dq[n][2 * r + 1] * scale);
    }
}

}  // namespace flash

// Entry points "attention_tc_<kernel>_hs<HS>", 128 threads each, with their dynamic shared memory in
// bytes as the device constant "<entry>_smem", which the host reads rather than restating the sizes.
#define FLASH_EXPORT(HS)                                                                                        \
    extern "C" __device__ const int attention_tc_forward_hs##HS##_smem = flash::Forward<HS>::SMEM;             \
    extern "C" __device__ const int attention_tc_backward_kv_hs##HS##_smem = flash::BackwardKv<HS>::SMEM;      \
    extern "C" __device__ const int attention_tc_backward_q_hs##HS##_smem = flash::BackwardQ<HS>::SMEM;        \
    extern "C" __global__ void __launch_bounds__(flash::THREADS, 1)                                               \
        attention_tc_forward_hs##HS(bf16* out, float* lse, const bf16* qkv, int T, int C, int NH) {            \
        flash::forward<HS>(out, lse, qkv, T, C, NH);                                                            \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(flash::THREADS, 1) attention_tc_backward_kv_hs##HS(               \
        bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* delta, int T, int C,      \
        int NH) {                                                                                               \
        flash::backward_kv<HS>(dqkv, dout, qkv, lse, delta, T, C, NH);                                          \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(flash::THREADS, 1) attention_tc_backward_q_hs##HS(                \
        bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* delta, int T, int C,      \
        int NH) {                                                                                               \
        flash::backward_q<HS>(dqkv, dout, qkv, lse, delta, T, C, NH);                                           \
    }
FLASH_EXPORT(64)
FLASH_EXPORT(128)
