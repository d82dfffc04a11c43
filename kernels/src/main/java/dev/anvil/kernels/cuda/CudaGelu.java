package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.util.List;

/** GELU (tanh approximation), forward and backward ({@code gelu.cu}). */
final class CudaGelu {

    private static final String FORWARD = "gelu_forward", BACKWARD = "gelu_backward";
    static final List<String> ENTRY_POINTS = CudaKernels.names(List.of(FORWARD, BACKWARD), List.of());

    private final OpContext ctx;
    private final CudaKernels.Typed forward, backward;

    CudaGelu(OpContext ctx) {
        this.ctx = ctx;
        forward = ctx.kernels.typed(FORWARD);
        backward = ctx.kernels.typed(BACKWARD);
    }

    void forward(Buffer out, Buffer inp, int n) {
        DType dt = ctx.floatType(out, "out");
        ctx.launch(forward.of(dt)).ptr(ctx.buf(out, dt, "out", n)).ptr(ctx.buf(inp, dt, "inp", n)).i32(n)
                .launch(ctx.grid(n), OpContext.THREADS);
    }

    void backward(Buffer dinp, Buffer inp, Buffer dout, int n) {
        DType dt = ctx.floatType(dinp, "dinp");
        ctx.launch(backward.of(dt)).ptr(ctx.buf(dinp, dt, "dinp", n)).ptr(ctx.buf(inp, dt, "inp", n))
                .ptr(ctx.buf(dout, dt, "dout", n)).i32(n).launch(ctx.grid(n), OpContext.THREADS);
    }
}
