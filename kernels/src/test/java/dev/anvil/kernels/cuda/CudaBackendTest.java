package dev.anvil.kernels.cuda;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import dev.anvil.kernels.cuda.driver.Driver;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The CUDA backend against the CPU backend, op by op, on odd shapes (tiles and warps never divide
 * them evenly). Runs only where a GPU is present; elsewhere it is skipped with the reason printed
 * (failed under {@code -Danvil.requireCuda=true}: see {@link RequireCuda}).
 */
class CudaBackendTest {

    private static CudaBackend gpu;
    private static CpuBackend cpu;
    private final Random random = new Random(7);

    /** The same tensor on both backends: {@code c} on the CPU, {@code g} on the GPU. */
    private record Pair(Buffer c, Buffer g) {
    }

    @BeforeAll
    static void open() {
        if (!CudaBackend.isAvailable()) {
            System.out.println("skipping the CUDA backend tests: " + CudaBackend.unavailableReason().orElseThrow());
            return;
        }
        gpu = CudaBackend.open();
        cpu = new CpuBackend(2);
        System.out.println("testing " + gpu.description());
    }

    /** Each test is skipped (and counted so) where no GPU is present, or fails if CUDA is required. */
    @BeforeEach
    void requireGpu() {
        RequireCuda.assume(gpu != null, () -> CudaBackend.unavailableReason().orElse("the CUDA backend did not open"));
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    // ---- helpers ----

    private float[] rand(long n, float scale) {
        float[] a = new float[(int) n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (random.nextFloat() * 2 - 1) * scale;
        }
        return a;
    }

    private static Buffer upload(Backend backend, float[] data) {
        Buffer b = backend.allocate(DType.FP32, data.length);
        backend.upload(b, MemorySegment.ofArray(data));
        return b;
    }

    private static Pair floats(float[] data) {
        return new Pair(upload(cpu, data), upload(gpu, data));
    }

    private Pair random(long n, float scale) {
        return floats(rand(n, scale));
    }

    private static Pair ints(int[] data) {
        Buffer c = cpu.allocate(DType.INT32, data.length), g = gpu.allocate(DType.INT32, data.length);
        cpu.upload(c, MemorySegment.ofArray(data));
        gpu.upload(g, MemorySegment.ofArray(data));
        return new Pair(c, g);
    }

    private static Pair zeros(long n) {
        return new Pair(cpu.allocate(DType.FP32, n), gpu.allocate(DType.FP32, n));
    }

    private static float[] read(Backend backend, Buffer b) {
        float[] out = new float[(int) b.length()];
        backend.download(b, MemorySegment.ofArray(out));
        return out;
    }

    /** Asserts |cpu - gpu| <= tol · max(1, |cpu|) elementwise. */
    private static void assertClose(Pair p, double tol, String what) {
        float[] want = read(cpu, p.c), got = read(gpu, p.g);
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(want[i] - got[i]);
            if (!(err <= tol * Math.max(1, Math.abs(want[i])))) {
                fail(what + "[" + i + "]: cpu " + want[i] + ", cuda " + got[i]);
            }
        }
    }

    /** bf16 rounding (nearest even) of an fp32 value, as __float2bfloat16_rn does. */
    private static float bf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        bits += 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(bits & 0xFFFF0000);
    }

    /** A BF16 copy on the GPU of values that the CPU gets rounded to bf16 in fp32. */
    private Pair bf16Random(long n, float scale) {
        float[] data = rand(n, scale);
        for (int i = 0; i < data.length; i++) {
            data[i] = bf16(data[i]);
        }
        Buffer g = gpu.allocate(DType.BF16, n);
        try (Buffer tmp = upload(gpu, data)) {
            gpu.convert(g, tmp);
        }
        return new Pair(upload(cpu, data), g);
    }

    private static void assertCloseBf16(Pair p, double tol, String what) {
        try (Buffer tmp = gpu.allocate(DType.FP32, p.g.length())) {
            gpu.convert(tmp, p.g);
            assertClose(new Pair(p.c, tmp), tol, what);
        }
    }

    // ---- memory ----

    @Test
    void transfersRoundTripThroughHeapNativeAndSlices() {
        float[] data = rand(3_000_000, 1);  // larger than one staging chunk
        Buffer b = upload(gpu, data);
        assertArrayEquals(data, read(gpu, b));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(JAVA_FLOAT, data.length);
            gpu.download(b, host);
            assertArrayEquals(data, host.toArray(JAVA_FLOAT));
            MemorySegment part = arena.allocateFrom(JAVA_FLOAT, 1f, 2f, 3f);
            gpu.upload(b.slice(5, 3), part);
        }
        assertArrayEquals(new float[] {data[4], 1f, 2f, 3f, data[8]}, read(gpu, b.slice(4, 5)));
        Buffer c = gpu.allocate(DType.FP32, data.length);
        gpu.copy(c, b);
        gpu.zero(b.slice(0, 10));
        assertEquals(0f, read(gpu, b)[9]);
        assertEquals(1f, read(gpu, c)[5]);
        b.close();
        c.close();
    }

    @Test
    void convertsBetweenFp32AndBf16() {
        float[] data = rand(1001, 100);
        float[] want = new float[data.length];
        for (int i = 0; i < data.length; i++) {
            want[i] = bf16(data[i]);
        }
        try (Buffer f = upload(gpu, data); Buffer h = gpu.allocate(DType.BF16, data.length);
             Buffer back = gpu.allocate(DType.FP32, data.length)) {
            gpu.convert(h, f);
            gpu.convert(back, h);
            assertArrayEquals(want, read(gpu, back));
        }
    }

    @Test
    void badTokenIsReportedAtTheNextSynchronize() {
        int c = 8;
        Buffer out = gpu.allocate(DType.FP32, 2 * c), wte = gpu.allocate(DType.FP32, 4 * c);
        Buffer wpe = gpu.allocate(DType.FP32, 2 * c), tokens = gpu.allocate(DType.INT32, 2);
        gpu.upload(tokens, MemorySegment.ofArray(new int[] {1, 9}));
        gpu.encoderForward(out, tokens, wte, wpe, 1, 2, c);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, gpu::synchronize);
        assertTrue(e.getMessage().contains("token id 9 at position 1"), e.getMessage());
        gpu.synchronize();  // reported once, then cleared
    }

    // ---- threads ----

    /**
     * The context is current per OS thread, and other code on the thread may change it: every op
     * makes its own context current (a cached "already current" flag would make this op fail with
     * CUDA_ERROR_INVALID_CONTEXT).
     */
    @Test
    void opsWorkAfterOtherCodeClearedTheCurrentContext() {
        float[] data = rand(1000, 1);
        try (Buffer b = upload(gpu, data)) {
            Driver.setCurrentContext(MemorySegment.NULL);
            gpu.zero(b.slice(0, 10));
            float[] got = read(gpu, b);
            assertEquals(0f, got[9]);
            assertEquals(data[10], got[10]);
        }
    }

    /** One thread at a time, but any thread: a new platform thread, then many virtual threads in turn. */
    @Test
    void opsRunOnAnyThreadOneAtATime() throws Exception {
        float[] data = rand(4096, 1);
        try (Buffer a = upload(gpu, data); Buffer sum = gpu.allocate(DType.FP32, data.length)) {
            Thread platform = Thread.ofPlatform().start(() -> gpu.residualForward(sum, a, a, data.length));
            platform.join();
            for (int i = 0; i < 64; i++) {
                Thread.ofVirtual().start(() -> {
                    gpu.residualForward(sum, sum, a, data.length);
                    Thread.yield();  // may resume on another carrier thread
                    gpu.residualForward(sum, sum, a, data.length);
                }).join();
            }
            float[] got = read(gpu, sum);
            for (int i = 0; i < data.length; i++) {
                assertEquals(130 * data[i], got[i], 1e-4 * Math.abs(130 * data[i]) + 1e-6, "sum[" + i + "]");
            }
        }
    }

    // ---- ops in fp32 against the CPU ----

    @Test
    void encoder() {
        int b = 3, t = 7, c = 40, vocab = 11;
        int[] tok = new int[b * t];
        for (int i = 0; i < tok.length; i++) {
            tok[i] = random.nextInt(4);  // repeats, so dwte rows collide
        }
        Pair tokens = ints(tok), wte = random((long) vocab * c, 1), wpe = random((long) t * c, 1);
        Pair out = zeros((long) b * t * c);
        cpu.encoderForward(out.c, tokens.c, wte.c, wpe.c, b, t, c);
        gpu.encoderForward(out.g, tokens.g, wte.g, wpe.g, b, t, c);
        assertClose(out, 1e-6, "encoder out");
        Pair dout = random((long) b * t * c, 1), dwte = random((long) vocab * c, 1), dwpe = random((long) t * c, 1);
        cpu.encoderBackward(dwte.c, dwpe.c, dout.c, tokens.c, b, t, c);
        gpu.encoderBackward(dwte.g, dwpe.g, dout.g, tokens.g, b, t, c);
        assertClose(dwte, 1e-5, "dwte");
        assertClose(dwpe, 1e-5, "dwpe");
    }

    /**
     * dwte is specified exactly: each (token, channel) sums its positions' gradients in fp32 in order
     * of position and adds the sum to dwte, rounding once. So the GPU must equal that sum computed
     * here bit for bit, for fp32 and bf16 storage, on every run (atomics would add in a varying order).
     */
    @Test
    void embeddingGradientIsTheFp32SumInPositionOrderBitForBit() {
        int b = 4, t = 1000, c = 67, vocab = 50;
        int[] tok = new int[b * t];
        for (int i = 0; i < tok.length; i++) {
            tok[i] = random.nextInt(100) < 30 ? 7 : random.nextInt(vocab);  // one frequent token, as in text
        }
        float[] dout = rand((long) b * t * c, 1), dwte0 = rand((long) vocab * c, 1);
        for (DType dt : new DType[] {DType.FP32, DType.BF16}) {
            boolean half = dt == DType.BF16;
            float[] g = half ? bf16All(dout) : dout, w0 = half ? bf16All(dwte0) : dwte0;
            float[] acc = new float[vocab * c];
            for (int bt = 0; bt < tok.length; bt++) {
                for (int ch = 0; ch < c; ch++) {
                    acc[tok[bt] * c + ch] += g[bt * c + ch];
                }
            }
            float[] want = new float[vocab * c];
            for (int i = 0; i < want.length; i++) {
                want[i] = half ? bf16(w0[i] + acc[i]) : w0[i] + acc[i];
            }
            Buffer tokens = gpu.allocate(DType.INT32, tok.length);
            gpu.upload(tokens, MemorySegment.ofArray(tok));
            for (int run = 0; run < 2; run++) {
                try (Buffer dwte = typed(dt, w0); Buffer dwpe = gpu.allocate(dt, (long) t * c);
                     Buffer d = typed(dt, g)) {
                    gpu.encoderBackward(dwte, dwpe, d, tokens, b, t, c);
                    assertArrayEquals(want, readAsFloat(dwte), dt + " dwte, run " + run);
                }
            }
            tokens.close();
        }
    }

    /**
     * 4096 bf16 gradients of about 1 for one token: a bf16 running sum stops growing near 256 (each
     * addend is then under half a unit in the last place), while the fp32 sum, rounded once, is
     * within bf16's rounding of the true ~4096.
     */
    @Test
    void bf16EmbeddingGradientOfAFrequentTokenKeepsEveryContribution() {
        int b = 2, t = 2048, c = 3;
        float[] g = new float[b * t * c];
        double exact = 0;
        for (int i = 0; i < g.length; i++) {
            g[i] = bf16(0.75f + random.nextFloat() * 0.5f);
            exact += i % c == 0 ? g[i] : 0;
        }
        try (Buffer tokens = gpu.allocate(DType.INT32, (long) b * t); Buffer dwte = gpu.allocate(DType.BF16, 4L * c);
             Buffer dwpe = gpu.allocate(DType.BF16, (long) t * c); Buffer d = typed(DType.BF16, g)) {
            gpu.zero(tokens);  // every position holds token 0
            gpu.encoderBackward(dwte, dwpe, d, tokens, b, t, c);
            float got = readAsFloat(dwte)[0];
            assertEquals(exact, got, exact / 128, "dwte[0][0] summed over " + b * t + " positions");
        }
    }

    private static float[] bf16All(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = bf16(x[i]);
        }
        return out;
    }

    /** A new GPU buffer of {@code dt} holding {@code values} (already representable in it). */
    private static Buffer typed(DType dt, float[] values) {
        Buffer f = upload(gpu, values);
        if (dt == DType.FP32) {
            return f;
        }
        Buffer out = gpu.allocate(dt, values.length);
        gpu.convert(out, f);
        f.close();
        return out;
    }

    /** A GPU buffer of FP32 or BF16, widened to fp32. */
    private static float[] readAsFloat(Buffer b) {
        if (b.dtype() == DType.FP32) {
            return read(gpu, b);
        }
        try (Buffer tmp = gpu.allocate(DType.FP32, b.length())) {
            gpu.convert(tmp, b);
            return read(gpu, tmp);
        }
    }

    @Test
    void layerNorm() {
        int n = 37, c = 100;
        Pair inp = random((long) n * c, 3), w = random(c, 1), bias = random(c, 1);
        Pair out = zeros((long) n * c), mean = zeros(n), rstd = zeros(n);
        cpu.layerNormForward(out.c, mean.c, rstd.c, inp.c, w.c, bias.c, n, c);
        gpu.layerNormForward(out.g, mean.g, rstd.g, inp.g, w.g, bias.g, n, c);
        assertClose(out, 1e-5, "ln out");
        assertClose(mean, 1e-5, "ln mean");
        assertClose(rstd, 1e-5, "ln rstd");
        Pair dout = random((long) n * c, 1), dinp = random((long) n * c, 1), dw = random(c, 1), db = random(c, 1);
        cpu.layerNormBackward(dinp.c, dw.c, db.c, dout.c, inp.c, w.c, mean.c, rstd.c, n, c);
        gpu.layerNormBackward(dinp.g, dw.g, db.g, dout.g, inp.g, w.g, mean.g, rstd.g, n, c);
        assertClose(dinp, 1e-4, "ln dinp");
        assertClose(dw, 1e-4, "ln dweight");
        assertClose(db, 1e-4, "ln dbias");
    }

    @Test
    void matmul() {
        int n = 37, c = 48, oc = 81;
        Pair inp = random((long) n * c, 1), w = random((long) oc * c, 1), bias = random(oc, 1);
        for (boolean withBias : new boolean[] {true, false}) {
            Pair out = zeros((long) n * oc);
            cpu.matmulForward(out.c, inp.c, w.c, withBias ? bias.c : null, n, c, oc);
            gpu.matmulForward(out.g, inp.g, w.g, withBias ? bias.g : null, n, c, oc);
            assertClose(out, 1e-5, "matmul out, bias " + withBias);
        }
        Pair dout = random((long) n * oc, 1), dinp = random((long) n * c, 1);
        Pair dw = random((long) oc * c, 1), db = random(oc, 1);
        cpu.matmulBackward(dinp.c, dw.c, db.c, dout.c, inp.c, w.c, n, c, oc);
        gpu.matmulBackward(dinp.g, dw.g, db.g, dout.g, inp.g, w.g, n, c, oc);
        cpu.matmulBackward(null, dw.c, null, dout.c, inp.c, w.c, n, c, oc);
        gpu.matmulBackward(null, dw.g, null, dout.g, inp.g, w.g, n, c, oc);
        assertClose(dinp, 1e-5, "matmul dinp");
        assertClose(dw, 1e-5, "matmul dweight");
        assertClose(db, 1e-5, "matmul dbias");
    }

    @Test
    void attention() {
        int[][] shapes = {{2, 67, 64, 4}, {1, 45, 128, 2}, {1, 33, 256, 2}, {2, 5, 12, 3}};  // hs 16, 64, 128, 4
        for (int[] s : shapes) {
            int b = s[0], t = s[1], c = s[2], nh = s[3];
            String shape = " b" + b + " t" + t + " c" + c + " nh" + nh;
            long btc = (long) b * t * c;
            Pair qkv = random(3 * btc, 1), out = zeros(btc), lse = zeros((long) b * nh * t);
            cpu.attentionForward(out.c, lse.c, qkv.c, b, t, c, nh);
            gpu.attentionForward(out.g, lse.g, qkv.g, b, t, c, nh);
            assertClose(out, 1e-5, "attention out" + shape);
            assertClose(lse, 1e-5, "attention lse" + shape);
            Pair dout = random(btc, 1), dqkv = random(3 * btc, 1);
            cpu.attentionBackward(dqkv.c, dout.c, qkv.c, out.c, lse.c, b, t, c, nh);
            gpu.attentionBackward(dqkv.g, dout.g, qkv.g, out.g, lse.g, b, t, c, nh);
            assertClose(dqkv, 1e-4, "attention dqkv" + shape);
        }
    }

    @Test
    void geluAndResidual() {
        int n = 10_007;
        Pair inp = random(n, 4), out = zeros(n);
        cpu.geluForward(out.c, inp.c, n);
        gpu.geluForward(out.g, inp.g, n);
        assertClose(out, 1e-5, "gelu out");
        Pair dout = random(n, 1), dinp = random(n, 1);
        cpu.geluBackward(dinp.c, inp.c, dout.c, n);
        gpu.geluBackward(dinp.g, inp.g, dout.g, n);
        assertClose(dinp, 1e-5, "gelu dinp");
        Pair a = random(n, 1), b = random(n, 1), sum = zeros(n);
        cpu.residualForward(sum.c, a.c, b.c, n);
        gpu.residualForward(sum.g, a.g, b.g, n);
        assertClose(sum, 1e-6, "residual out");
        cpu.residualBackward(a.c, b.c, dout.c, n);
        gpu.residualBackward(a.g, b.g, dout.g, n);
        assertClose(a, 1e-6, "residual da");
        assertClose(b, 1e-6, "residual db");
    }

    @Test
    void softmaxCrossEntropy() {
        int n = 13, v = 1000, vp = 1024;
        int[] tg = new int[n];
        for (int i = 0; i < n; i++) {
            tg[i] = random.nextInt(v);
        }
        Pair targets = ints(tg);
        for (float scale : new float[] {0f, 1f / n}) {
            Pair logits = random((long) n * vp, 8), losses = zeros(n);
            cpu.softmaxCrossEntropy(losses.c, logits.c, targets.c, n, v, vp, scale);
            gpu.softmaxCrossEntropy(losses.g, logits.g, targets.g, n, v, vp, scale);
            assertClose(losses, 1e-5, "losses, scale " + scale);
            assertClose(logits, 1e-6, "dlogits, scale " + scale);
        }
    }

    @Test
    void sumOfSquares() {
        Pair x = random(1_234_567, 1), out = zeros(1);
        cpu.sumOfSquares(out.c, x.c);
        gpu.sumOfSquares(out.g, x.g);
        assertClose(out, 1e-6, "sum of squares");
    }

    @Test
    void adamw() {
        int n = 100_003;
        Pair p = random(n, 1), m = zeros(n), v = zeros(n);
        for (int step = 1; step <= 3; step++) {
            Pair g = random(n, 1);
            AdamWStep s = new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            cpu.adamw(p.c, null, g.c, m.c, v.c, s);
            gpu.adamw(p.g, null, g.g, m.g, v.g, s);
        }
        assertClose(p, 1e-6, "adamw params");
        assertClose(m, 1e-6, "adamw m");
        assertClose(v, 1e-6, "adamw v");
    }

    // ---- bf16 storage against the CPU in fp32 ----

    @Test
    void bf16OpsTrackFp32() {
        int b = 2, t = 19, c = 64, nh = 2, n = b * t, oc = 3 * c;
        Pair x = bf16Random((long) n * c, 2), w = bf16Random(c, 1), bias = bf16Random(c, 1);
        Pair ln = new Pair(cpu.allocate(DType.FP32, (long) n * c), gpu.allocate(DType.BF16, (long) n * c));
        Pair mean = zeros(n), rstd = zeros(n);
        cpu.layerNormForward(ln.c, mean.c, rstd.c, x.c, w.c, bias.c, n, c);
        gpu.layerNormForward(ln.g, mean.g, rstd.g, x.g, w.g, bias.g, n, c);
        assertCloseBf16(ln, 2e-2, "bf16 layernorm");
        Pair wq = bf16Random((long) oc * c, 0.2f), bq = bf16Random(oc, 0.2f);
        Pair qkv = new Pair(cpu.allocate(DType.FP32, (long) n * oc), gpu.allocate(DType.BF16, (long) n * oc));
        // The CPU gets the GPU's bf16 layernorm output, so only the matmul's rounding differs.
        try (Buffer tmp = gpu.allocate(DType.FP32, (long) n * c)) {
            gpu.convert(tmp, ln.g);
            cpu.upload(ln.c, MemorySegment.ofArray(read(gpu, tmp)));
        }
        cpu.matmulForward(qkv.c, ln.c, wq.c, bq.c, n, c, oc);
        gpu.matmulForward(qkv.g, ln.g, wq.g, bq.g, n, c, oc);
        assertCloseBf16(qkv, 2e-2, "bf16 matmul");
        Pair att = new Pair(cpu.allocate(DType.FP32, (long) n * c), gpu.allocate(DType.BF16, (long) n * c));
        Pair lse = zeros((long) b * nh * t);
        try (Buffer tmp = gpu.allocate(DType.FP32, (long) n * oc)) {
            gpu.convert(tmp, qkv.g);
            cpu.upload(qkv.c, MemorySegment.ofArray(read(gpu, tmp)));
        }
        cpu.attentionForward(att.c, lse.c, qkv.c, b, t, c, nh);
        gpu.attentionForward(att.g, lse.g, qkv.g, b, t, c, nh);
        assertCloseBf16(att, 2e-2, "bf16 attention");
        assertClose(lse, 1e-4, "bf16 attention lse");
    }

    @Test
    void bf16AdamwUpdatesMasterWeights() {
        int n = 4099;
        float[] init = rand(n, 1);
        Pair master = floats(init), m = zeros(n), v = zeros(n);
        Buffer params = gpu.allocate(DType.BF16, n);
        gpu.convert(params, master.g);
        Pair g = bf16Random(n, 1);
        AdamWStep s = new AdamWStep(1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, 1, 1f);
        cpu.adamw(master.c, null, g.c, m.c, v.c, s);
        gpu.adamw(params, master.g, g.g, m.g, v.g, s);
        assertClose(master, 1e-6, "master weights");
        float[] want = read(cpu, master.c);
        for (int i = 0; i < n; i++) {
            want[i] = bf16(want[i]);
        }
        try (Buffer tmp = gpu.allocate(DType.FP32, n)) {
            gpu.convert(tmp, params);
            float[] got = read(gpu, tmp);
            for (int i = 0; i < n; i++) {
                assertEquals(want[i], got[i], Math.ulp(want[i]) * 65536, "bf16 param " + i);
            }
        }
        params.close();
    }
}
