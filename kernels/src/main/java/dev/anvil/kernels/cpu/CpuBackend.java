package dev.anvil.kernels.cpu;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.BFloat16;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.DeviceMemory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * The pure-Java backend: every op runs on a fixed pool of threads over heap arrays, with Vector API
 * kernels where the incubating module is available and scalar loops otherwise.
 *
 * <p>FP32 is native. BF16 is <em>emulated</em>: a BF16 buffer is a {@code float[]} whose every value
 * is a bf16 value; ops compute in fp32 as for FP32 and then round their BF16 outputs to bf16
 * (nearest even), and host transfers convert to and from 2-byte bf16. So mixed-precision code
 * paths (bf16 activations, weights and gradients; fp32 statistics, moments and master weights, with
 * the CUDA backend's type rules) run and can be tested on any machine. It is not fast: no less work
 * than FP32, plus a rounding pass per op. Results match a GPU's to bf16 precision, not bit for bit:
 * this rounds each output once per op, where a GPU kernel may round partial results (the CUDA
 * encoder backward adds into bf16 {@code dwte} once per occurrence of a token).
 *
 * <p>This class checks shapes and delegates; each op's forward and backward live side by side in
 * their own class ({@code CpuLayerNorm}, {@code CpuAttention}, ...).
 */
public final class CpuBackend implements Backend {

    private static final int ROUND_GRAIN = 1 << 15;
    private static final int ZERO_GRAIN = 1 << 18;
    /** A bf16 element of host memory: little-endian, as {@link DeviceMemory} says, at any alignment. */
    private static final ValueLayout.OfShort BF16_BITS =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

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

    /** Every type: FP32 and INT32 natively, BF16 emulated (see the class comment). */
    @Override
    public boolean supports(DType dtype) {
        return true;
    }

    // ---- memory ----

    @Override
    public CpuBuffer allocate(DType dtype, long length) {
        return CpuBuffer.allocate(dtype, length);
    }

    /** Zeroes on every thread: one core cannot write a model's gradients at memory speed. */
    @Override
    public void zero(Buffer buffer) {
        CpuBuffer b = (CpuBuffer) buffer;
        pool.forEach((int) b.length, ZERO_GRAIN, (start, end) -> {
            if (b.f != null) {
                java.util.Arrays.fill(b.f, b.offset + start, b.offset + end, 0f);
            } else {
                java.util.Arrays.fill(b.i, b.offset + start, b.offset + end, 0);
            }
        });
    }

    @Override
    public void upload(Buffer dst, MemorySegment src) {
        CpuBuffer b = (CpuBuffer) dst;
        requireBytes(src, b, "upload source");
        if (b.dtype() == DType.BF16) {
            // widening bf16 is exact: the stored floats are bf16 values
            for (int i = 0; i < b.length; i++) {
                b.f[b.offset + i] = BFloat16.toFloat(src.getAtIndex(BF16_BITS, i));
            }
        } else {
            MemorySegment.copy(src, 0, b.segment(), 0, src.byteSize());
        }
    }

    @Override
    public void download(Buffer src, MemorySegment dst) {
        CpuBuffer b = (CpuBuffer) src;
        requireBytes(dst, b, "download destination");
        if (b.dtype() == DType.BF16) {
            for (int i = 0; i < b.length; i++) {
                dst.setAtIndex(BF16_BITS, i, BFloat16.fromFloat(b.f[b.offset + i]));
            }
        } else {
            MemorySegment.copy(b.segment(), 0, dst, 0, dst.byteSize());
        }
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

    /**
     * The buffer's array as a segment; empty for BF16, whose storage is widened floats rather than
     * the 2-byte elements a caller of {@code hostView} expects (so it stages, as with a GPU).
     */
    @Override
    public Optional<MemorySegment> hostView(Buffer buffer) {
        CpuBuffer b = (CpuBuffer) buffer;
        return b.dtype() == DType.BF16 ? Optional.empty() : Optional.of(b.segment());
    }

    @Override
    public void synchronize() {
        // every op has finished when it returns
    }

    // ---- transformer ops ----
    // Types follow the CUDA backend's rules, so code that runs here runs there: an op's tensors are
    // all FP32 or all BF16, chosen by its output (see floatType), except the statistics (mean, rstd,
    // lse, losses: FP32) and token ids and targets (INT32); a matmul may read BF16 into an FP32
    // output, and its backward may write gradients of either float type.

    @Override
    public void encoderForward(Buffer out, Buffer tokens, Buffer wte, Buffer wpe, int b, int t, int c) {
        DType dt = floatType(out, "out");
        long bt = (long) b * t;
        CpuBuffer o = CpuBuffer.of(out, dt, "out", bt * c);
        encoder.forward(o, CpuBuffer.i32(tokens, "tokens", bt), CpuBuffer.of(wte, dt, "wte", c),
                CpuBuffer.of(wpe, dt, "wpe", (long) t * c), b, t, c);
        roundBf16(o, bt * c);
    }

    @Override
    public void encoderBackward(Buffer dwte, Buffer dwpe, Buffer dout, Buffer tokens, int b, int t, int c) {
        DType dt = floatType(dwte, "dwte");
        long bt = (long) b * t;
        CpuBuffer dte = CpuBuffer.of(dwte, dt, "dwte", c), dpe = CpuBuffer.of(dwpe, dt, "dwpe", (long) t * c);
        encoder.backward(dte, dpe, CpuBuffer.of(dout, dt, "dout", bt * c), CpuBuffer.i32(tokens, "tokens", bt), b, t, c);
        // the rows touched depend on the tokens: round all of dwte (idempotent on untouched rows)
        roundBf16(dte, dte.length());
        roundBf16(dpe, (long) t * c);
    }

    @Override
    public void layerNormForward(Buffer out, Buffer mean, Buffer rstd, Buffer inp, Buffer weight, Buffer bias,
                                 int n, int c) {
        DType dt = floatType(out, "out");
        long nc = (long) n * c;
        CpuBuffer o = CpuBuffer.of(out, dt, "out", nc);
        layerNorm.forward(o, CpuBuffer.f32(mean, "mean", n), CpuBuffer.f32(rstd, "rstd", n),
                CpuBuffer.of(inp, dt, "inp", nc), CpuBuffer.of(weight, dt, "weight", c),
                CpuBuffer.of(bias, dt, "bias", c), n, c);
        roundBf16(o, nc);
    }

    @Override
    public void layerNormBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp,
                                  Buffer weight, Buffer mean, Buffer rstd, int n, int c) {
        DType dt = floatType(dinp, "dinp");
        long nc = (long) n * c;
        CpuBuffer dx = CpuBuffer.of(dinp, dt, "dinp", nc);
        CpuBuffer dw = CpuBuffer.of(dweight, dt, "dweight", c), db = CpuBuffer.of(dbias, dt, "dbias", c);
        layerNorm.backward(dx, dw, db, CpuBuffer.of(dout, dt, "dout", nc), CpuBuffer.of(inp, dt, "inp", nc),
                CpuBuffer.of(weight, dt, "weight", c), CpuBuffer.f32(mean, "mean", n), CpuBuffer.f32(rstd, "rstd", n),
                n, c);
        roundBf16(dx, nc);
        roundBf16(dw, c);
        roundBf16(db, c);
    }

    @Override
    public void matmulForward(Buffer out, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc) {
        DType dt = floatType(out, "out");
        DType in = floatType(inp, "inp");
        CpuBuffer o = CpuBuffer.of(out, dt, "out", (long) n * oc);
        matmul.forward(o, CpuBuffer.of(inp, in, "inp", (long) n * c), CpuBuffer.of(weight, in, "weight", (long) oc * c),
                bias == null ? null : CpuBuffer.of(bias, dt, "bias", oc), n, c, oc);
        roundBf16(o, (long) n * oc);
    }

    @Override
    public void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                               int n, int c, int oc) {
        DType dt = floatType(dout, "dout");
        CpuBuffer dx = dinp == null ? null : CpuBuffer.of(dinp, floatType(dinp, "dinp"), "dinp", (long) n * c);
        CpuBuffer dw = dweight == null ? null : CpuBuffer.of(dweight, floatType(dweight, "dweight"), "dweight", (long) oc * c);
        CpuBuffer db = dbias == null ? null : CpuBuffer.of(dbias, floatType(dbias, "dbias"), "dbias", oc);
        matmul.backward(dx, dw, db, CpuBuffer.of(dout, dt, "dout", (long) n * oc),
                CpuBuffer.of(inp, dt, "inp", (long) n * c), CpuBuffer.of(weight, dt, "weight", (long) oc * c),
                n, c, oc);
        if (dx != null) {
            roundBf16(dx, (long) n * c);
        }
        if (dw != null) {
            roundBf16(dw, (long) oc * c);
        }
        if (db != null) {
            roundBf16(db, oc);
        }
    }

    @Override
    public void attentionForward(Buffer out, Buffer lse, Buffer qkv, int b, int t, int c, int nh) {
        requireHeads(c, nh);
        DType dt = floatType(out, "out");
        long btc = (long) b * t * c;
        CpuBuffer o = CpuBuffer.of(out, dt, "out", btc);
        attention.forward(o, CpuBuffer.f32(lse, "lse", (long) b * nh * t), CpuBuffer.of(qkv, dt, "qkv", 3 * btc),
                b, t, c, nh);
        roundBf16(o, btc);
    }

    @Override
    public void attentionBackward(Buffer dqkv, Buffer dout, Buffer qkv, Buffer out, Buffer lse,
                                  int b, int t, int c, int nh) {
        requireHeads(c, nh);
        DType dt = floatType(dqkv, "dqkv");
        long btc = (long) b * t * c;
        CpuBuffer dx = CpuBuffer.of(dqkv, dt, "dqkv", 3 * btc);
        attention.backward(dx, CpuBuffer.of(dout, dt, "dout", btc), CpuBuffer.of(qkv, dt, "qkv", 3 * btc),
                CpuBuffer.of(out, dt, "out", btc), CpuBuffer.f32(lse, "lse", (long) b * nh * t), b, t, c, nh);
        roundBf16(dx, 3 * btc);
    }

    private static void requireHeads(int c, int nh) {
        if (nh <= 0 || c % nh != 0) {
            throw new IllegalArgumentException("channels " + c + " do not split into " + nh + " heads");
        }
    }

    @Override
    public void geluForward(Buffer out, Buffer inp, int n) {
        DType dt = floatType(out, "out");
        CpuBuffer o = CpuBuffer.of(out, dt, "out", n);
        gelu.forward(o, CpuBuffer.of(inp, dt, "inp", n), n);
        roundBf16(o, n);
    }

    @Override
    public void geluBackward(Buffer dinp, Buffer inp, Buffer dout, int n) {
        DType dt = floatType(dinp, "dinp");
        CpuBuffer dx = CpuBuffer.of(dinp, dt, "dinp", n);
        gelu.backward(dx, CpuBuffer.of(inp, dt, "inp", n), CpuBuffer.of(dout, dt, "dout", n), n);
        roundBf16(dx, n);
    }

    @Override
    public void residualForward(Buffer out, Buffer a, Buffer b, int n) {
        DType dt = floatType(out, "out");
        CpuBuffer o = CpuBuffer.of(out, dt, "out", n);
        residual.forward(o, CpuBuffer.of(a, dt, "a", n), CpuBuffer.of(b, dt, "b", n), n);
        roundBf16(o, n);
    }

    @Override
    public void residualBackward(Buffer da, Buffer db, Buffer dout, int n) {
        DType dt = floatType(da, "da");
        CpuBuffer ga = CpuBuffer.of(da, dt, "da", n), gb = CpuBuffer.of(db, dt, "db", n);
        residual.backward(ga, gb, CpuBuffer.of(dout, dt, "dout", n), n);
        roundBf16(ga, n);
        roundBf16(gb, n);
    }

    @Override
    public void softmaxCrossEntropy(Buffer losses, Buffer logits, Buffer targets, int n, int v, int vp,
                                    float gradScale) {
        if (v <= 0 || v > vp) {
            throw new IllegalArgumentException("vocabulary " + v + " must lie in [1, padded " + vp + "]");
        }
        DType dt = floatType(logits, "logits");
        CpuBuffer z = CpuBuffer.of(logits, dt, "logits", (long) n * vp);
        crossEntropy.forwardBackward(CpuBuffer.f32(losses, "losses", n), z, CpuBuffer.i32(targets, "targets", n),
                n, v, vp, gradScale);
        if (gradScale != 0f) {
            roundBf16(z, (long) n * vp);
        }
    }

    // ---- optimizer ops ----

    @Override
    public void sumOfSquares(Buffer out, Buffer x) {
        CpuBuffer o = CpuBuffer.f32(out, "out", 1);
        o.f[o.offset] = (float) adamw.sumOfSquares(CpuBuffer.of(x, floatType(x, "x"), "x"));
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step) {
        DType pt = floatType(params, "params");
        long n = params.length();
        CpuBuffer p = CpuBuffer.of(params, pt, "params", n);
        CpuBuffer g = CpuBuffer.of(grads, floatType(grads, "grads"), "grads", n);
        CpuBuffer mm = CpuBuffer.f32(m, "m", n), vv = CpuBuffer.f32(v, "v", n);
        if (pt == DType.FP32) {
            if (master != null) {
                throw new IllegalArgumentException("FP32 parameters are their own master weights; pass master = null");
            }
            if (g.dtype() != DType.FP32) {
                throw new IllegalArgumentException("FP32 parameters need FP32 gradients, got " + g.dtype());
            }
            adamw.update(p, g, mm, vv, step);
        } else {
            if (master == null) {
                throw new IllegalArgumentException("BF16 parameters need FP32 master weights");
            }
            // The update is made on the fp32 master weights, which the parameters are the rounding of.
            CpuBuffer w = CpuBuffer.f32(master, "master", n);
            adamw.update(w, g, mm, vv, step);
            roundBf16Into(p, w, n);
        }
    }

    @Override
    public void gradientClip(Buffer out, Buffer sumOfSquares, float maxNorm) {
        CpuBuffer o = CpuBuffer.f32(out, "out", 2), s = CpuBuffer.f32(sumOfSquares, "sumOfSquares", 1);
        float norm = (float) Math.sqrt(s.f[s.offset]);
        float scale = !Float.isFinite(norm) ? Float.NaN : maxNorm <= 0f ? 1f : Math.min(maxNorm / (norm + 1e-6f), 1f);
        o.f[o.offset] = norm;
        o.f[o.offset + 1] = scale;
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step,
                      Buffer gradScale) {
        CpuBuffer s = CpuBuffer.f32(gradScale, "gradScale", 1);
        float scale = s.f[s.offset];
        if (Float.isFinite(scale)) {
            adamw(params, master, grads, m, v, step.withGradScale(scale));
        }
    }

    /** The storage type of an op, taken from its output as the CUDA backend does: FP32 or BF16. */
    private static DType floatType(Buffer buffer, String name) {
        DType t = CpuBuffer.of(buffer, buffer.dtype(), name).dtype();
        if (t == DType.INT32) {
            throw new IllegalArgumentException(name + " must be FP32 or BF16, is INT32");
        }
        return t;
    }

    /**
     * The bf16 emulation: an op has written {@code out}'s first {@code n} elements in fp32; when
     * {@code out} is BF16, round them to bf16 (nearest even), as a GPU kernel does when it stores.
     * Values already bf16 are unchanged, so rounding more than was written is harmless.
     */
    private void roundBf16(CpuBuffer out, long n) {
        if (out.dtype() == DType.BF16) {
            roundBf16Into(out, out, n);
        }
    }

    /** {@code dst[i] = bf16(src[i])} over the first {@code n} elements; {@code dst} may be {@code src}. */
    private void roundBf16Into(CpuBuffer dst, CpuBuffer src, long n) {
        float[] d = dst.f, s = src.f;
        int dOff = dst.offset, sOff = src.offset;
        pool.forEach((int) n, ROUND_GRAIN, (start, end) -> {
            for (int i = start; i < end; i++) {
                d[dOff + i] = BFloat16.round(s[sOff + i]);
            }
        });
    }

    @Override
    public void close() {
        pool.close();
    }
}
