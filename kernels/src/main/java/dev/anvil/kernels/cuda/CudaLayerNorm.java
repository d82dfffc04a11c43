package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.util.List;

/** LayerNorm over the channels, forward and backward ({@code layernorm.cu}). */
final class CudaLayerNorm {

    private static final String FORWARD = "layernorm_forward", BACKWARD_INPUT = "layernorm_backward_input",
            BACKWARD_PARAMS = "layernorm_backward_params", RESIDUAL_FORWARD = "residual_layernorm_forward";
    static final List<String> ENTRY_POINTS = CudaKernels.names(
            List.of(FORWARD, BACKWARD_INPUT, BACKWARD_PARAMS, RESIDUAL_FORWARD), List.of());

    private final OpContext ctx;
    private final CudaColumnSums sums;
    private final CudaKernels.Typed forward, backwardInput, backwardParams, residualForward;

    CudaLayerNorm(OpContext ctx, CudaColumnSums sums) {
        this.ctx = ctx;
        this.sums = sums;
        forward = ctx.kernels.typed(FORWARD);
        backwardInput = ctx.kernels.typed(BACKWARD_INPUT);
        backwardParams = ctx.kernels.typed(BACKWARD_PARAMS);
        residualForward = ctx.kernels.typed(RESIDUAL_FORWARD);
    }

    /** {@code residual = a + b}, then the LayerNorm of it, in one kernel. */
    void residualForward(Buffer residual, Buffer out, Buffer mean, Buffer rstd, Buffer a, Buffer b, Buffer weight,
                         Buffer bias, int n, int c) {
        DType dt = ctx.floatType(out, "out");
        long nc = (long) n * c;
        ctx.launch(residualForward.of(dt)).ptr(ctx.buf(residual, dt, "residual", nc)).ptr(ctx.buf(out, dt, "out", nc))
                .ptr(ctx.buf(mean, DType.FP32, "mean", n)).ptr(ctx.buf(rstd, DType.FP32, "rstd", n))
                .ptr(ctx.buf(a, dt, "a", nc)).ptr(ctx.buf(b, dt, "b", nc))
                .ptr(ctx.buf(weight, dt, "weight", c)).ptr(ctx.buf(bias, dt, "bias", c))
                .i32(n).i32(c).launch(OpContext.rowBlocks(n), OpContext.THREADS);
    }

    void forward(Buffer out, Buffer mean, Buffer rstd, Buffer inp, Buffer weight, Buffer bias, int n, int c) {
        DType dt = ctx.floatType(out, "out");
        long nc = (long) n * c;
        ctx.launch(forward.of(dt)).ptr(ctx.buf(out, dt, "out", nc))
                .ptr(ctx.buf(mean, DType.FP32, "mean", n)).ptr(ctx.buf(rstd, DType.FP32, "rstd", n))
                .ptr(ctx.buf(inp, dt, "inp", nc)).ptr(ctx.buf(weight, dt, "weight", c)).ptr(ctx.buf(bias, dt, "bias", c))
                .i32(n).i32(c).launch(OpContext.rowBlocks(n), OpContext.THREADS);
    }

    void backward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight, Buffer mean,
                  Buffer rstd, int n, int c) {
        DType dt = ctx.floatType(dinp, "dinp");
        long nc = (long) n * c;
        CudaBuffer dx = ctx.buf(dinp, dt, "dinp", nc), dw = ctx.buf(dweight, dt, "dweight", c);
        CudaBuffer db = ctx.buf(dbias, dt, "dbias", c);
        CudaBuffer g = ctx.buf(dout, dt, "dout", nc), x = ctx.buf(inp, dt, "inp", nc), w = ctx.buf(weight, dt, "weight", c);
        CudaBuffer mu = ctx.buf(mean, DType.FP32, "mean", n), rs = ctx.buf(rstd, DType.FP32, "rstd", n);
        if (n == 0) {
            return;
        }
        ctx.launch(backwardInput.of(dt)).ptr(dx).ptr(g).ptr(x).ptr(w).ptr(mu).ptr(rs)
                .i32(n).i32(c).launch(OpContext.rowBlocks(n), OpContext.THREADS);
        int rowsPerChunk = OpContext.rowsPerChunk(n), chunks = OpContext.chunks(n);
        long partials = ctx.scratch.get((long) chunks * 2 * c * Float.BYTES);
        ctx.launch(backwardParams.of(dt)).ptr(partials).ptr(g).ptr(x).ptr(mu).ptr(rs)
                .i32(n).i32(c).i32(rowsPerChunk).launch(OpContext.columnBlocks(c), chunks, OpContext.THREADS);
        sums.addPartials(dw, partials, chunks, 2 * c, c);
        sums.addPartials(db, partials + (long) c * Float.BYTES, chunks, 2 * c, c);
    }
}
