package dev.anvil.bench.profile;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * A backend that runs every op on another and, while {@link #recording}, marks a timeline before
 * and after each one and notes its class and {@link OpCost}, so that a step's time splits by op
 * class. Fused ops are delegated whole (they are what the model calls), never decomposed here.
 */
final class ProfiledBackend implements Backend {

    /** Where op boundaries are timed: CUDA events on the GPU, the host clock after a synchronize on the CPU. */
    interface Timeline {
        /** Marks the current end of the queued work. */
        void mark();

        /** Milliseconds between consecutive marks since the last call; waits for the work. */
        float[] millis();
    }

    private record Call(String op, OpCost cost) {
    }

    private final Backend inner;
    private final Timeline timeline;
    private final List<Call> calls = new ArrayList<>();
    private boolean recording;

    ProfiledBackend(Backend inner, Timeline timeline) {
        this.inner = inner;
        this.timeline = timeline;
    }

    /** Starts recording ops. */
    void start() {
        calls.clear();
        recording = true;
        timeline.millis();  // drop marks of earlier work
    }

    /** Stops recording: each op class's calls, time and cost, and the idle time between ops, in ms. */
    Map<String, Roofline.Row> stop(double[] idleMillis) {
        recording = false;
        float[] millis = timeline.millis();
        Map<String, Roofline.Row> rows = new LinkedHashMap<>();
        double idle = 0;
        for (int i = 0; i < calls.size(); i++) {
            Call c = calls.get(i);
            double ms = millis[2 * i];
            if (2 * i + 1 < millis.length) {
                idle += millis[2 * i + 1];
            }
            rows.merge(c.op, new Roofline.Row(c.op, 1, ms, c.cost),
                    (a, b) -> new Roofline.Row(a.op(), a.calls() + 1, a.millis() + b.millis(), a.cost().plus(b.cost())));
        }
        idleMillis[0] = idle;
        return rows;
    }

    private void op(String name, OpCost cost, Runnable run) {
        if (!recording) {
            run.run();
            return;
        }
        timeline.mark();
        run.run();
        timeline.mark();
        calls.add(new Call(name, cost));
    }

    private static int bytes(Buffer b) {
        return b.dtype().bytes();
    }

    // ---- memory: delegated; zeroing and copies on the device are timed ----

    @Override
    public String description() {
        return inner.description();
    }

    @Override
    public boolean supports(DType dtype) {
        return inner.supports(dtype);
    }

    @Override
    public Buffer allocate(DType dtype, long length) {
        return inner.allocate(dtype, length);
    }

    @Override
    public void zero(Buffer buffer) {
        op("memset", new OpCost(0, (double) buffer.length() * bytes(buffer)), () -> inner.zero(buffer));
    }

    @Override
    public void upload(Buffer dst, MemorySegment src) {
        op("host transfers", new OpCost(0, src.byteSize()), () -> inner.upload(dst, src));
    }

    @Override
    public void download(Buffer src, MemorySegment dst) {
        inner.download(src, dst);
    }

    @Override
    public void copy(Buffer dst, Buffer src) {
        op("memcpy", new OpCost(0, 2.0 * src.length() * bytes(src)), () -> inner.copy(dst, src));
    }

    @Override
    public void synchronize() {
        inner.synchronize();
    }

    @Override
    public Optional<MemorySegment> hostView(Buffer buffer) {
        return inner.hostView(buffer);
    }

    @Override
    public MemorySegment allocateHost(long bytes) {
        return inner.allocateHost(bytes);
    }

    @Override
    public void freeHost(MemorySegment host) {
        inner.freeHost(host);
    }

    @Override
    public CompletableFuture<Void> downloadAsync(Buffer src, MemorySegment dst) {
        return inner.downloadAsync(src, dst);
    }

    // ---- transformer ops ----

    @Override
    public void encoderForward(Buffer out, Buffer tokens, Buffer wte, Buffer wpe, int b, int t, int c) {
        op("encoder forward", OpCost.elementwise((long) b * t * c, 1, 3, bytes(out)),
                () -> inner.encoderForward(out, tokens, wte, wpe, b, t, c));
    }

    @Override
    public void encoderBackward(Buffer dwte, Buffer dwpe, Buffer dout, Buffer tokens, int b, int t, int c) {
        op("encoder backward", OpCost.elementwise((long) b * t * c, 2, 5, bytes(dout)),
                () -> inner.encoderBackward(dwte, dwpe, dout, tokens, b, t, c));
    }

    @Override
    public void layerNormForward(Buffer out, Buffer mean, Buffer rstd, Buffer inp, Buffer weight, Buffer bias,
                                 int n, int c) {
        op("layernorm forward", OpCost.layerNormForward(n, c, bytes(out)),
                () -> inner.layerNormForward(out, mean, rstd, inp, weight, bias, n, c));
    }

    @Override
    public void layerNormBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                                  Buffer mean, Buffer rstd, int n, int c) {
        op("layernorm backward", OpCost.layerNormBackward(n, c, bytes(dinp)),
                () -> inner.layerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, n, c));
    }

    @Override
    public void matmulForward(Buffer out, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc) {
        op("matmul forward", OpCost.matmulForward(n, c, oc, bytes(out), bias != null),
                () -> inner.matmulForward(out, inp, weight, bias, n, c, oc));
    }

    @Override
    public void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                               int n, int c, int oc) {
        op("matmul backward", OpCost.matmulBackward(n, c, oc, bytes(dout), dinp != null, true),
                () -> inner.matmulBackward(dinp, dweight, dbias, dout, inp, weight, n, c, oc));
    }

    @Override
    public void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                               int n, int c, int oc, boolean accumulate) {
        op("matmul backward", OpCost.matmulBackward(n, c, oc, bytes(dout), dinp != null, accumulate),
                () -> inner.matmulBackward(dinp, dweight, dbias, dout, inp, weight, n, c, oc, accumulate));
    }

    @Override
    public void matmulGeluForward(Buffer out, Buffer preact, Buffer inp, Buffer weight, Buffer bias, int n, int c,
                                  int oc) {
        OpCost cost = OpCost.matmulForward(n, c, oc, bytes(out), true)
                .plus(OpCost.elementwise((long) n * oc, 10, 1, bytes(out)));
        op("matmul+gelu forward", cost, () -> inner.matmulGeluForward(out, preact, inp, weight, bias, n, c, oc));
    }

    @Override
    public void matmulGeluBackward(Buffer dpreact, Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp,
                                   Buffer weight, Buffer preact, int n, int c, int oc, boolean accumulate) {
        OpCost cost = OpCost.matmulBackward(n, c, oc, bytes(dout), true, accumulate)
                .plus(OpCost.elementwise((long) n * c, 12, 1, bytes(dout)));
        op("matmul+gelu backward", cost, () -> inner.matmulGeluBackward(dpreact, dinp, dweight, dbias, dout, inp,
                weight, preact, n, c, oc, accumulate));
    }

    @Override
    public void attentionForward(Buffer out, Buffer lse, Buffer qkv, int b, int t, int c, int nh) {
        op("attention forward", OpCost.attentionForward(b, t, c, nh, bytes(out)),
                () -> inner.attentionForward(out, lse, qkv, b, t, c, nh));
    }

    @Override
    public void attentionBackward(Buffer dqkv, Buffer dout, Buffer qkv, Buffer out, Buffer lse, int b, int t, int c,
                                  int nh) {
        op("attention backward", OpCost.attentionBackward(b, t, c, nh, bytes(dqkv)),
                () -> inner.attentionBackward(dqkv, dout, qkv, out, lse, b, t, c, nh));
    }

    @Override
    public void geluForward(Buffer out, Buffer inp, int n) {
        op("gelu", OpCost.elementwise(n, 10, 2, bytes(out)), () -> inner.geluForward(out, inp, n));
    }

    @Override
    public void geluBackward(Buffer dinp, Buffer inp, Buffer dout, int n) {
        op("gelu", OpCost.elementwise(n, 14, 4, bytes(dinp)), () -> inner.geluBackward(dinp, inp, dout, n));
    }

    @Override
    public void residualForward(Buffer out, Buffer a, Buffer b, int n) {
        op("residual", OpCost.elementwise(n, 1, 3, bytes(out)), () -> inner.residualForward(out, a, b, n));
    }

    @Override
    public void residualBackward(Buffer da, Buffer db, Buffer dout, int n) {
        op("residual", OpCost.elementwise(n, 2, 5, bytes(da)), () -> inner.residualBackward(da, db, dout, n));
    }

    @Override
    public void residualLayerNormForward(Buffer residual, Buffer out, Buffer mean, Buffer rstd, Buffer a, Buffer b,
                                         Buffer weight, Buffer bias, int n, int c) {
        OpCost cost = OpCost.layerNormForward(n, c, bytes(out)).plus(OpCost.elementwise((long) n * c, 1, 2, bytes(out)));
        op("residual+layernorm forward", cost,
                () -> inner.residualLayerNormForward(residual, out, mean, rstd, a, b, weight, bias, n, c));
    }

    @Override
    public void softmaxCrossEntropy(Buffer losses, Buffer logits, Buffer targets, int n, int v, int vp, float gradScale) {
        op("cross-entropy", OpCost.crossEntropy(n, v, vp, bytes(logits)),
                () -> inner.softmaxCrossEntropy(losses, logits, targets, n, v, vp, gradScale));
    }

    @Override
    public void lmHeadCrossEntropy(Buffer losses, Buffer dinp, Buffer dweight, Buffer inp, Buffer weight,
                                   Buffer targets, Buffer scratch, int n, int c, int v, int vp, float gradScale,
                                   boolean accumulate) {
        OpCost cost = OpCost.matmulForward(n, c, vp, bytes(inp), false).plus(OpCost.crossEntropy(n, v, vp, bytes(inp)));
        if (gradScale != 0f) {
            cost = cost.plus(OpCost.matmulBackward(n, c, vp, bytes(inp), true, accumulate));
        }
        op("lm head+cross-entropy", cost, () -> inner.lmHeadCrossEntropy(losses, dinp, dweight, inp, weight, targets,
                scratch, n, c, v, vp, gradScale, accumulate));
    }

    // ---- optimizer ----

    @Override
    public void sumOfSquares(Buffer out, Buffer x) {
        op("gradient norm", OpCost.elementwise(x.length(), 2, 1, bytes(x)), () -> inner.sumOfSquares(out, x));
    }

    @Override
    public void gradientClip(Buffer out, Buffer sumOfSquares, float maxNorm) {
        op("gradient norm", OpCost.NONE, () -> inner.gradientClip(out, sumOfSquares, maxNorm));
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step) {
        op("adamw", OpCost.adamw(params.length(), bytes(params), master != null),
                () -> inner.adamw(params, master, grads, m, v, step));
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step,
                      Buffer gradScale) {
        op("adamw", OpCost.adamw(params.length(), bytes(params), master != null),
                () -> inner.adamw(params, master, grads, m, v, step, gradScale));
    }

    @Override
    public void close() {
        // the inner backend belongs to the caller
    }
}
