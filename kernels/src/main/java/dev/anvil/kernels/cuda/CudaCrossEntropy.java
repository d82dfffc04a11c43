package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.util.List;

/** Fused softmax and cross-entropy, the gradient written over the logits ({@code crossentropy.cu}). */
final class CudaCrossEntropy {

    private static final String KERNEL = "softmax_cross_entropy";
    static final List<String> ENTRY_POINTS = CudaKernels.names(List.of(KERNEL), List.of());
    private static final int THREADS = 512;

    private final OpContext ctx;
    private final CudaKernels.Typed kernel;

    CudaCrossEntropy(OpContext ctx) {
        this.ctx = ctx;
        kernel = ctx.kernels.typed(KERNEL);
    }

    void forwardBackward(Buffer losses, Buffer logits, Buffer targets, int n, int v, int vp, float gradScale) {
        if (v <= 0 || v > vp) {
            throw new IllegalArgumentException("vocabulary " + v + " must lie in [1, padded " + vp + "]");
        }
        DType dt = ctx.floatType(logits, "logits");
        CudaBuffer l = ctx.buf(losses, DType.FP32, "losses", n), z = ctx.buf(logits, dt, "logits", (long) n * vp);
        CudaBuffer tg = ctx.buf(targets, DType.INT32, "targets", n);
        if (n == 0) {
            return;
        }
        ctx.launch(kernel.of(dt)).ptr(l).ptr(z).ptr(tg).i32(v).i32(vp).f32(gradScale).ptr(ctx.errorFlag)
                .launch(n, THREADS);
    }
}
