package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.util.List;

/** Token plus position embedding, forward and backward ({@code encoder.cu}). */
final class CudaEncoder {

    private static final String FORWARD = "encoder_forward", BACKWARD_WPE = "encoder_backward_wpe",
            BACKWARD_WTE = "encoder_backward_wte", BACKWARD_WTE_ORDER = "encoder_backward_wte_order";
    static final List<String> ENTRY_POINTS = CudaKernels.names(List.of(FORWARD, BACKWARD_WPE, BACKWARD_WTE),
            List.of(BACKWARD_WTE_ORDER));
    /** Block size of {@code encoder_backward_wte_order}, its {@code ENC_ORDER_TILE}. */
    private static final int ORDER_THREADS = 128;

    private final OpContext ctx;
    private final CudaKernels.Typed forward, backwardWpe, backwardWte;
    private final MemorySegment backwardWteOrder;

    CudaEncoder(OpContext ctx) {
        this.ctx = ctx;
        forward = ctx.kernels.typed(FORWARD);
        backwardWpe = ctx.kernels.typed(BACKWARD_WPE);
        backwardWte = ctx.kernels.typed(BACKWARD_WTE);
        backwardWteOrder = ctx.kernels.function(BACKWARD_WTE_ORDER);
    }

    void forward(Buffer out, Buffer tokens, Buffer wte, Buffer wpe, int b, int t, int c) {
        DType dt = ctx.floatType(out, "out");
        long bt = (long) b * t;
        CudaBuffer te = ctx.buf(wte, dt, "wte", c);
        ctx.launch(forward.of(dt)).ptr(ctx.buf(out, dt, "out", bt * c))
                .ptr(ctx.buf(tokens, DType.INT32, "tokens", bt)).ptr(te).ptr(ctx.buf(wpe, dt, "wpe", (long) t * c))
                .i32(b).i32(t).i32(c).i32((int) Math.min(Integer.MAX_VALUE, te.length() / c)).ptr(ctx.errorFlag)
                .launch(ctx.grid(bt * c), OpContext.THREADS);
    }

    /**
     * Deterministic, with fp32 sums: {@code dwpe} sums the batch per (position, channel);
     * {@code dwte} first sorts the positions by token, stably, then sums each (token, channel) in
     * order of position and rounds once (see encoder.cu).
     */
    void backward(Buffer dwte, Buffer dwpe, Buffer dout, Buffer tokens, int b, int t, int c) {
        DType dt = ctx.floatType(dwte, "dwte");
        long bt = (long) b * t;
        CudaBuffer dte = ctx.buf(dwte, dt, "dwte", c), dpe = ctx.buf(dwpe, dt, "dwpe", (long) t * c);
        CudaBuffer g = ctx.buf(dout, dt, "dout", bt * c), tok = ctx.buf(tokens, DType.INT32, "tokens", bt);
        if (bt == 0 || c == 0) {
            return;
        }
        int n = Math.toIntExact(bt);
        ctx.launch(backwardWpe.of(dt)).ptr(dpe).ptr(g).i32(b).i32(t).i32(c)
                .launch(ctx.grid((long) t * c), OpContext.THREADS);
        int vocab = (int) Math.min(Integer.MAX_VALUE - 1, dte.length() / c);
        long order = ctx.scratch.get(2 * bt * Integer.BYTES), sorted = order + bt * Integer.BYTES;
        ctx.launch(backwardWteOrder).ptr(order).ptr(sorted).ptr(tok).i32(n).i32(vocab)
                .ptr(ctx.errorFlag).launch((n + ORDER_THREADS - 1) / ORDER_THREADS, ORDER_THREADS);
        // Enough blocks along the ranks to fill the GPU; each strides over the runs of equal tokens.
        int rankBlocks = Math.min(n, 16 * ctx.smCount);
        ctx.launch(backwardWte.of(dt)).ptr(dte).ptr(g).ptr(order).ptr(sorted).i32(n).i32(c)
                .i32(vocab).launch(OpContext.columnBlocks(c), rankBlocks, OpContext.THREADS);
    }
}
