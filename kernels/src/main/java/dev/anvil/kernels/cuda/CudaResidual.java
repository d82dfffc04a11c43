package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.util.List;

/** The residual add, forward and backward ({@code residual.cu}). */
final class CudaResidual {

    private static final String FORWARD = "residual_forward", BACKWARD = "residual_backward";
    static final List<String> ENTRY_POINTS = CudaKernels.names(List.of(FORWARD, BACKWARD), List.of());

    private final OpContext ctx;
    private final CudaKernels.Typed forward, backward;

    CudaResidual(OpContext ctx) {
        this.ctx = ctx;
        forward = ctx.kernels.typed(FORWARD);
        backward = ctx.kernels.typed(BACKWARD);
    }

    void forward(Buffer out, Buffer a, Buffer b, int n) {
        DType dt = ctx.floatType(out, "out");
        ctx.launch(forward.of(dt)).ptr(ctx.buf(out, dt, "out", n)).ptr(ctx.buf(a, dt, "a", n))
                .ptr(ctx.buf(b, dt, "b", n)).i32(n).launch(ctx.grid(n), OpContext.THREADS);
    }

    void backward(Buffer da, Buffer db, Buffer dout, int n) {
        DType dt = ctx.floatType(da, "da");
        ctx.launch(backward.of(dt)).ptr(ctx.buf(da, dt, "da", n)).ptr(ctx.buf(db, dt, "db", n))
                .ptr(ctx.buf(dout, dt, "dout", n)).i32(n).launch(ctx.grid(n), OpContext.THREADS);
    }
}
