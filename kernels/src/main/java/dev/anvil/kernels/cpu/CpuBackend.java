package dev.anvil.kernels.cpu;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * The pure-Java backend: every op runs on a fixed pool of threads over heap arrays, with Vector API
 * kernels where the incubating module is available and scalar loops otherwise. FP32 only.
 *
 * <p>This class checks shapes and delegates; each op's forward and backward live side by side in
 * their own class ({@code CpuLayerNorm}, {@code CpuAttention}, ...).
 */
public final class CpuBackend implements Backend {

    private final WorkerPool pool;
    private final CpuEncoder encoder;
    private final CpuLayerNorm layerNorm;
    private final CpuMatmul matmul;
    private final CpuAttention attention;
    private final CpuGelu gelu;
    private final CpuResidual residual;
    private final CpuCrossEntropy crossEntropy;
    private final CpuAdamW adamw;

    /** A backend using every available core. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /** A backend using {@code threads} threads (the calling thread counts as one). */
    public CpuBackend(int threads) {
        this.pool = new WorkerPool(threads);
        this.encoder = new CpuEncoder(pool);
        this.layerNorm = new CpuLayerNorm(pool);
        this.matmul = new CpuMatmul(pool);
        this.attention = new CpuAttention(pool);
        this.gelu = new CpuGelu(pool);
        this.residual = new CpuResidual(pool);
        this.crossEntropy = new CpuCrossEntropy(pool);
        this.adamw = new CpuAdamW(pool);
    }

    /** Number of threads the ops run on. */
    public int threads() {
        return pool.threads();
    }

    @Override
    public String description() {
        return "cpu (" + pool.threads() + " threads, " + (Simd.available() ? "Vector API" : "scalar") + ")";
    }

    @Override
    public boolean supports(DType dtype) {
        return dtype != DType.BF16;
    }

    // ---- memory ----

    @Override
    public CpuBuffer allocate(DType dtype, long length) {
        return CpuBuffer.allocate(dtype, length);
    }

    @Override
    public void zero(Buffer buffer) {
        CpuBuffer b = (CpuBuffer) buffer;
        if (b.f != null) {
            java.util.Arrays.fill(b.f, b.offset, b.offset + b.length, 0f);
        } else {
            java.util.Arrays.fill(b.i, b.offset, b.offset + b.length, 0);
        }
    }

    @Override
    public void upload(Buffer dst, MemorySegment src) {
        CpuBuffer b = (CpuBuffer) dst;
        requireBytes(src, b, "upload source");
        MemorySegment.copy(src, 0, b.segment(), 0, src.byteSize());
    }

    @Override
    public void download(Buffer src, MemorySegment dst) {
        CpuBuffer b = (CpuBuffer) src;
        requireBytes(dst, b, "download destination");
        MemorySegment.copy(b.segment(), 0, dst, 0, dst.byteSize());
    }

    private static void requireBytes(MemorySegment host, CpuBuffer b, String what) {
        long need = b.length() * b.dtype().bytes();
        if (host.byteSize() != need) {
            throw new IllegalArgumentException(what + " holds " + host.byteSize() + " bytes, the buffer "
                    + need);
        }
    }

    @Override
    public void copy(Buffer dst, Buffer src) {
        CpuBuffer d = (CpuBuffer) dst, s = (CpuBuffer) src;
        if (d.dtype() != s.dtype() || d.length() != s.length()) {
            throw new IllegalArgumentException("copy needs equal buffers, got " + d + " and " + s);
        }
        MemorySegment.copy(s.segment(), 0, d.segment(), 0, s.segment().byteSize());
    }

    @Override
    public Optional<MemorySegment> hostView(Buffer buffer) {
        return Optional.of(((CpuBuffer) buffer).segment());
    }

    @Override
    public void synchronize() {
        // every op has finished when it returns
    }

    // ---- transformer ops ----

    @Override
    public void encoderForward(Buffer out, Buffer tokens, Buffer wte, Buffer wpe, int b, int t, int c) {
        long bt = (long) b * t;
        encoder.forward(CpuBuffer.f32(out, "out", bt * c), CpuBuffer.i32(tokens, "tokens", bt),
                CpuBuffer.f32(wte, "wte", c), CpuBuffer.f32(wpe, "wpe", (long) t * c), b, t, c);
    }

    @Override
    public void encoderBackward(Buffer dwte, Buffer dwpe, Buffer dout, Buffer tokens, int b, int t, int c) {
        long bt = (long) b * t;
        encoder.backward(CpuBuffer.f32(dwte, "dwte", c), CpuBuffer.f32(dwpe, "dwpe", (long) t * c),
                CpuBuffer.f32(dout, "dout", bt * c), CpuBuffer.i32(tokens, "tokens", bt), b, t, c);
    }

    @Override
    public void layerNormForward(Buffer out, Buffer mean, Buffer rstd, Buffer inp, Buffer weight, Buffer bias,
                                 int n, int c) {
        long nc = (long) n * c;
        layerNorm.forward(CpuBuffer.f32(out, "out", nc), CpuBuffer.f32(mean, "mean", n),
                CpuBuffer.f32(rstd, "rstd", n), CpuBuffer.f32(inp, "inp", nc), CpuBuffer.f32(weight, "weight", c),
                CpuBuffer.f32(bias, "bias", c), n, c);
    }

    @Override
    public void layerNormBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp,
                                  Buffer weight, Buffer mean, Buffer rstd, int n, int c) {
        long nc = (long) n * c;
        layerNorm.backward(CpuBuffer.f32(dinp, "dinp", nc), CpuBuffer.f32(dweight, "dweight", c),
                CpuBuffer.f32(dbias, "dbias", c), CpuBuffer.f32(dout, "dout", nc), CpuBuffer.f32(inp, "inp", nc),
                CpuBuffer.f32(weight, "weight", c), CpuBuffer.f32(mean, "mean", n), CpuBuffer.f32(rstd, "rstd", n),
                n, c);
    }

    @Override
    public void matmulForward(Buffer out, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc) {
        matmul.forward(CpuBuffer.f32(out, "out", (long) n * oc), CpuBuffer.f32(inp, "inp", (long) n * c),
                CpuBuffer.f32(weight, "weight", (long) oc * c),
                bias == null ? null : CpuBuffer.f32(bias, "bias", oc), n, c, oc);
    }

    @Override
    public void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                               int n, int c, int oc) {
        matmul.backward(dinp == null ? null : CpuBuffer.f32(dinp, "dinp", (long) n * c),
                CpuBuffer.f32(dweight, "dweight", (long) oc * c),
                dbias == null ? null : CpuBuffer.f32(dbias, "dbias", oc),
                CpuBuffer.f32(dout, "dout", (long) n * oc), CpuBuffer.f32(inp, "inp", (long) n * c),
                CpuBuffer.f32(weight, "weight", (long) oc * c), n, c, oc);
    }

    @Override
    public void attentionForward(Buffer out, Buffer lse, Buffer qkv, int b, int t, int c, int nh) {
        requireHeads(c, nh);
        long btc = (long) b * t * c;
        attention.forward(CpuBuffer.f32(out, "out", btc), CpuBuffer.f32(lse, "lse", (long) b * nh * t),
                CpuBuffer.f32(qkv, "qkv", 3 * btc), b, t, c, nh);
    }

    @Override
    public void attentionBackward(Buffer dqkv, Buffer dout, Buffer qkv, Buffer out, Buffer lse,
                                  int b, int t, int c, int nh) {
        requireHeads(c, nh);
        long btc = (long) b * t * c;
        attention.backward(CpuBuffer.f32(dqkv, "dqkv", 3 * btc), CpuBuffer.f32(dout, "dout", btc),
                CpuBuffer.f32(qkv, "qkv", 3 * btc), CpuBuffer.f32(out, "out", btc),
                CpuBuffer.f32(lse, "lse", (long) b * nh * t), b, t, c, nh);
    }

    private static void requireHeads(int c, int nh) {
        if (nh <= 0 || c % nh != 0) {
            throw new IllegalArgumentException("channels " + c + " do not split into " + nh + " heads");
        }
    }

    @Override
    public void geluForward(Buffer out, Buffer inp, int n) {
        gelu.forward(CpuBuffer.f32(out, "out", n), CpuBuffer.f32(inp, "inp", n), n);
    }

    @Override
    public void geluBackward(Buffer dinp, Buffer inp, Buffer dout, int n) {
        gelu.backward(CpuBuffer.f32(dinp, "dinp", n), CpuBuffer.f32(inp, "inp", n), CpuBuffer.f32(dout, "dout", n), n);
    }

    @Override
    public void residualForward(Buffer out, Buffer a, Buffer b, int n) {
        residual.forward(CpuBuffer.f32(out, "out", n), CpuBuffer.f32(a, "a", n), CpuBuffer.f32(b, "b", n), n);
    }

    @Override
    public void residualBackward(Buffer da, Buffer db, Buffer dout, int n) {
        residual.backward(CpuBuffer.f32(da, "da", n), CpuBuffer.f32(db, "db", n), CpuBuffer.f32(dout, "dout", n), n);
    }

    @Override
    public void softmaxCrossEntropy(Buffer losses, Buffer logits, Buffer targets, int n, int v, int vp,
                                    float gradScale) {
        if (v <= 0 || v > vp) {
            throw new IllegalArgumentException("vocabulary " + v + " must lie in [1, padded " + vp + "]");
        }
        crossEntropy.forwardBackward(CpuBuffer.f32(losses, "losses", n), CpuBuffer.f32(logits, "logits", (long) n * vp),
                CpuBuffer.i32(targets, "targets", n), n, v, vp, gradScale);
    }

    // ---- optimizer ops ----

    @Override
    public void sumOfSquares(Buffer out, Buffer x) {
        CpuBuffer o = CpuBuffer.f32(out, "out", 1);
        o.f[o.offset] = (float) adamw.sumOfSquares(CpuBuffer.of(x, DType.FP32, "x"));
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step) {
        if (master != null) {
            throw new IllegalArgumentException("the CPU backend keeps fp32 parameters and takes no master weights");
        }
        long n = params.length();
        adamw.update(CpuBuffer.f32(params, "params", n), CpuBuffer.f32(grads, "grads", n),
                CpuBuffer.f32(m, "m", n), CpuBuffer.f32(v, "v", n), step);
    }

    @Override
    public void close() {
        pool.close();
    }
}
