// The one translation unit nvcc compiles into anvil_kernels.fatbin: each op family lives in its own
// file, included here so that a single -fatbin invocation covers them all.
#include "adamw.cu"
#include "attention.cu"
#include "attention_tc.cu"
#include "convert.cu"
#include "crossentropy.cu"
#include "encoder.cu"
#include "gelu.cu"
#include "layernorm.cu"
#include "reduce.cu"
#include "residual.cu"
