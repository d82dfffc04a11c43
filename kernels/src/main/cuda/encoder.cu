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

/** dwpe[t,c] += Σ_b dout[b,t,c]: one thread per (t, c), so no two threads write one element. */
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

/**
 * dwte[tokens[bt],c] += dout[bt,c]. A token repeats across positions, so rows collide: atomics
 * (bf16 atomics need sm_80, the oldest target built). The summation order is not fixed.
 * A token id outside [0, vocab) is reported and contributes nothing.
 */
template <typename T>
__device__ void encoder_backward_wte(T* dwte, const T* dout, const int* tokens, int BT, int C, int vocab,
                                     int* errors) {
    GRID_STRIDE(i, (size_t)BT * C) {
        int bt = (int)(i / C), c = (int)(i % C);
        int id = tokens[bt];
        if (id < 0 || id >= vocab) {
            if (c == 0) report_error(errors, ANVIL_ERR_TOKEN, bt, id);
            continue;
        }
        atomicAdd(&dwte[(size_t)id * C + c], dout[i]);
    }
}
#define ENC_WTE_PARAMS(T) (T* dwte, const T* dout, const int* tokens, int BT, int C, int vocab, int* errors)
EXPORT_F32_BF16(encoder_backward_wte, ENC_WTE_PARAMS, (dwte, dout, tokens, BT, C, vocab, errors))
