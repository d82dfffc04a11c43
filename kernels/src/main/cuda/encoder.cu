// Token + position embedding, forward and backward.
#include "common.cuh"

/** out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]; a token id outside [0, vocab) is reported. */
template <typename T>
__device__ void encoder_forward(T* out, const int* tokens, const T* wte, const T* wpe,
                                int B, int Tn, int C, int vocab, int* errors) {
    GRID_STRIDE(i, (size_t)B * Tn * C) {
        int bt = (int)(i / C), c = (int)(i % C);
        int id = tokens[bt];
        if (id < 0 || id >= vocab) {
            if (c == 0) report_error(errors, ANVIL_ERR_TOKEN, bt, id);
            out[i] = from_float<T>(0.f);
            continue;
        }
        float e = to_float(wte[(size_t)id * C + c]) + to_float(wpe[(size_t)(bt % Tn) * C + c]);
        out[i] = from_float<T>(e);
    }
}
#define ENC_FWD_PARAMS(T) (T* out, const int* tokens, const T* wte, const T* wpe, int B, int Tn, int C, \
                           int vocab, int* errors)
EXPORT_F32_BF16(encoder_forward, ENC_FWD_PARAMS, (out, tokens, wte, wpe, B, Tn, C, vocab, errors))

/**
 * dwpe[t,c] += Σ_b dout[b,t,c]: one thread per (t, c) sums the batch in fp32, in order of b, and
 * rounds once into dwpe; no two threads write one element, so the result is reproducible.
 */
template <typename T>
__device__ void encoder_backward_wpe(T* dwpe, const T* dout, int B, int Tn, int C) {
    GRID_STRIDE(i, (size_t)Tn * C) {
        float acc = 0.f;
        for (int b = 0; b < B; b++) acc += to_float(dout[(size_t)b * Tn * C + i]);
        dwpe[i] = from_float<T>(to_float(dwpe[i]) + acc);
    }
}
#define ENC_WPE_PARAMS(T) (T* dwpe, const T* dout, int B, int Tn, int C)
EXPORT_F32_BF16(encoder_backward_wpe, ENC_WPE_PARAMS, (dwpe, dout, B, Tn, C))

// dwte[id,c] += Σ over the positions bt holding token id of dout[bt,c]. A token repeats across
// positions, so rows collide. Adding each contribution into dwte (atomics) would round a bf16 sum
// to 8 significant bits at every occurrence, which drops contributions once the sum is ~256 times
// their size, and would add in whatever order the threads ran. Instead, as llm.c does, positions
// are grouped by token and each (token, channel) is summed in fp32, in order of position, and
// rounded once: the result is the same on every run.

/** Threads per block of encoder_backward_wte_order; the tile of keys each block shares. */
#define ENC_ORDER_TILE 128

/** The sort key of position bt: token id (vocab for an invalid one, so those sort last), then bt. */
__device__ __forceinline__ unsigned long long position_key(const int* tokens, int bt, int vocab) {
    int id = tokens[bt];
    unsigned int k = (id < 0 || id >= vocab) ? (unsigned int)vocab : (unsigned int)id;
    return ((unsigned long long)k << 32) | (unsigned int)bt;
}

/**
 * Stage 1, a stable sort of the positions by token: order[s] is the position of rank s by
 * (token, position) and sorted[s] its token (vocab if invalid, reported). Each thread ranks its
 * position by counting the smaller keys, read in tiles through shared memory: (B·T)² comparisons,
 * ~3e8 for B·T = 16384, tens of microseconds; the keys are distinct, so the ranks are a permutation.
 */
extern "C" __global__ void __launch_bounds__(ENC_ORDER_TILE)
encoder_backward_wte_order(int* order, int* sorted, const int* tokens, int BT, int vocab, int* errors) {
    __shared__ unsigned long long tile[ENC_ORDER_TILE];
    int bt = blockIdx.x * ENC_ORDER_TILE + threadIdx.x;
    unsigned long long mine = ~0ull;
    if (bt < BT) {
        mine = position_key(tokens, bt, vocab);
        int id = tokens[bt];
        if (id < 0 || id >= vocab) report_error(errors, ANVIL_ERR_TOKEN, bt, id);
    }
    int rank = 0;
    for (int base = 0; base < BT; base += ENC_ORDER_TILE) {
        int j = base + threadIdx.x;
        __syncthreads();  // the previous tile has been read
        tile[threadIdx.x] = j < BT ? position_key(tokens, j, vocab) : ~0ull;
        __syncthreads();
        int n = min(ENC_ORDER_TILE, BT - base);
#pragma unroll 8
        for (int k = 0; k < n; k++) rank += tile[k] < mine;
    }
    if (bt < BT) {
        order[rank] = bt;
        sorted[rank] = (int)(mine >> 32);
    }
}

/**
 * Stage 2: one thread per channel of each run of equal tokens in sorted order (grid: channel
 * blocks × a grid-stride over ranks) sums the run's dout rows in fp32 and adds the sum to dwte,
 * rounding once. Invalid tokens sort last and contribute nothing.
 */
template <typename T>
__device__ void encoder_backward_wte(T* dwte, const T* dout, const int* order, const int* sorted, int BT, int C,
                                     int vocab) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int s = blockIdx.y; s < BT; s += gridDim.y) {
        int id = sorted[s];
        if (id >= vocab) break;                     // the rest are invalid ids too
        if (s > 0 && sorted[s - 1] == id) continue; // not the first position of its run
        float acc = 0.f;
        for (int r = s; r < BT && sorted[r] == id; r++) acc += to_float(dout[(size_t)order[r] * C + c]);
        size_t w = (size_t)id * C + c;
        dwte[w] = from_float<T>(to_float(dwte[w]) + acc);
    }
}
#define ENC_WTE_PARAMS(T) (T* dwte, const T* dout, const int* order, const int* sorted, int BT, int C, int vocab)
EXPORT_F32_BF16(encoder_backward_wte, ENC_WTE_PARAMS, (dwte, dout, order, sorted, BT, C, vocab))
