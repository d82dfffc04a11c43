package dev.anvil.kernels.cuda;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.util.List;

/** The optimizer ops: the gradients' sum of squares ({@code reduce.cu}) and the AdamW update ({@code adamw.cu}). */
final class CudaAdamW {

    private static final String SUM_SQUARES_PARTIAL = "sum_squares_partial", SUM_SQUARES_FINAL = "sum_squares_final",
            ADAMW_F32 = "adamw_f32_f32", ADAMW_BF16 = "adamw_bf16_bf16", ADAMW_BF16_F32_GRADS = "adamw_bf16_f32",
            GRADIENT_CLIP = "gradient_clip";
    static final List<String> ENTRY_POINTS = CudaKernels.names(List.of(SUM_SQUARES_PARTIAL),
            List.of(SUM_SQUARES_FINAL, ADAMW_F32, ADAMW_BF16, ADAMW_BF16_F32_GRADS, GRADIENT_CLIP));
    /** Blocks of the first stage of the sum of squares, at most. */
    private static final int MAX_SUM_BLOCKS = 1024;

    private final OpContext ctx;
    private final CudaKernels.Typed sumSquaresPartial;
    private final MemorySegment sumSquaresFinal, adamwF32, adamwBf16, adamwBf16F32Grads, gradientClip;

    CudaAdamW(OpContext ctx) {
        this.ctx = ctx;
        sumSquaresPartial = ctx.kernels.typed(SUM_SQUARES_PARTIAL);
        sumSquaresFinal = ctx.kernels.function(SUM_SQUARES_FINAL);
        adamwF32 = ctx.kernels.function(ADAMW_F32);
        adamwBf16 = ctx.kernels.function(ADAMW_BF16);
        adamwBf16F32Grads = ctx.kernels.function(ADAMW_BF16_F32_GRADS);
        gradientClip = ctx.kernels.function(GRADIENT_CLIP);
    }

    void gradientClip(Buffer out, Buffer sumOfSquares, float maxNorm) {
        ctx.launch(gradientClip).ptr(ctx.buf(out, DType.FP32, "out", 2))
                .ptr(ctx.buf(sumOfSquares, DType.FP32, "sumOfSquares", 1)).f32(maxNorm).launch(1, 32);
    }

    void sumOfSquares(Buffer out, Buffer x) {
        CudaBuffer o = ctx.buf(out, DType.FP32, "out", 1);
        DType dt = ctx.floatType(x, "x");
        CudaBuffer in = ctx.buf(x, dt, "x", 0);
        int blocks = Math.min(ctx.grid(in.length()), MAX_SUM_BLOCKS);
        long partials = ctx.scratch.get((long) blocks * Double.BYTES);
        ctx.launch(sumSquaresPartial.of(dt)).ptr(partials).ptr(in).size(in.length())
                .launch(blocks, OpContext.THREADS);
        ctx.launch(sumSquaresFinal).ptr(o).ptr(partials).i32(blocks).launch(1, OpContext.THREADS);
    }

    /** @param gradScale FP32 device scalar read in place of {@code step.gradScale()}, or {@code null} */
    void update(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step, Buffer gradScale) {
        DType pt = ctx.floatType(params, "params");
        long n = params.length();
        CudaBuffer p = ctx.buf(params, pt, "params", n);
        CudaBuffer g = ctx.buf(grads, ctx.floatType(grads, "grads"), "grads", n);
        CudaBuffer mm = ctx.buf(m, DType.FP32, "m", n), vv = ctx.buf(v, DType.FP32, "v", n);
        MemorySegment kernel;
        long masterPointer = 0;
        if (pt == DType.FP32) {
            if (master != null) {
                throw new IllegalArgumentException("FP32 parameters are their own master weights; pass master = null");
            }
            if (g.dtype() != DType.FP32) {
                throw new IllegalArgumentException("FP32 parameters need FP32 gradients, got " + g.dtype());
            }
            kernel = adamwF32;
        } else {
            if (master == null) {
                throw new IllegalArgumentException("BF16 parameters need FP32 master weights");
            }
            masterPointer = ctx.buf(master, DType.FP32, "master", n).pointer();
            kernel = g.dtype() == DType.BF16 ? adamwBf16 : adamwBf16F32Grads;
        }
        // PyTorch computes the bias corrections in double precision, then steps in fp32.
        double bc1 = 1.0 - Math.pow(step.beta1(), step.step());
        double bc2 = 1.0 - Math.pow(step.beta2(), step.step());
        ctx.launch(kernel).ptr(p).ptr(masterPointer).ptr(g).ptr(mm).ptr(vv).size(n)
                .f32(step.beta1()).f32(step.beta2()).f32(step.eps()).f32(1f - step.lr() * step.weightDecay())
                .f32((float) (step.lr() / bc1)).f32((float) Math.sqrt(bc2)).f32(step.gradScale())
                .ptr(gradScale == null ? 0 : ctx.buf(gradScale, DType.FP32, "gradScale", 1).pointer())
                .launch(ctx.grid(n), OpContext.THREADS);
    }
}
