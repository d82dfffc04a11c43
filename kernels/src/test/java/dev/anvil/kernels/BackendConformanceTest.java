package dev.anvil.kernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.function.DoubleSupplier;

import static dev.anvil.kernels.GradientCheck.assertClose;
import static dev.anvil.kernels.GradientCheck.assertCloseScalar;
import static dev.anvil.kernels.GradientCheck.assertFiniteDifferencesAgree;
import static dev.anvil.kernels.GradientCheck.assertReferenceGradient;
import static dev.anvil.kernels.GradientCheck.dot;
import static dev.anvil.kernels.GradientCheck.gaussian;
import static dev.anvil.kernels.GradientCheck.plus;
import static dev.anvil.kernels.GradientCheck.sample;
import static dev.anvil.kernels.GradientCheck.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The conformance suite every {@link Backend} must pass unchanged. A backend's test subclasses this
 * and implements {@link #createBackend()}; it may state looser {@linkplain #tolerances tolerances}
 * for reduced-precision types and pick the {@linkplain #floatType() element type} its activations,
 * weights and gradients are held in.
 *
 * <p>What it checks, for every op of {@link TransformerOps} and {@link OptimizerOps}:
 * <ul>
 *   <li>forward outputs against the float64 {@link Reference64} on seeded random inputs, with awkward
 *       shapes (t not a multiple of 8, head sizes 16 and 8, padded vocabularies);
 *   <li>backward outputs against the reference gradient, with zeroed gradient buffers, and again
 *       with gradient buffers pre-filled with random values, which must be accumulated into;
 *   <li>the reference gradient against central differences of the reference forward (float64),
 *       and the backend's gradient against central differences of the backend's own forward, on
 *       sampled coordinates of the scalar objective {@code Σ w·out} for random {@code w};
 *   <li>the documented details: saved mean/rstd/lse, null bias/dinp/dbias, padded vocabulary
 *       columns, {@code gradScale = 0}, unused position rows, AdamW against torch's update, the
 *       sum of squares of a large buffer;
 *   <li>that malformed calls (too small a buffer, a wrong dtype, an out-of-range token or target)
 *       throw an exception whose message names the problem.
 * </ul>
 *
 * <p>Every tensor the suite hands to an op is a {@linkplain Buffer#slice slice} at offset
 * {@link #guardElements()} of a larger buffer whose other elements hold random "guard" values;
 * after each test the guards must be unchanged, so an op that ignores a slice's offset or writes
 * past its end fails. Only the public {@link Backend} API is used: data travels through
 * {@link DeviceMemory#upload}/{@link DeviceMemory#download} of heap {@link MemorySegment}s.
 *
 * <p>One backend is created per test class ({@link TestInstance.Lifecycle#PER_CLASS}) and closed
 * after its last test; tests run one at a time, as a backend is used from one thread at a time.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class BackendConformanceTest {

    /** The backend under test; called once per test class. */
    protected abstract Backend createBackend();

    /**
     * Tolerances of the checks for tensors held in one element type.
     *
     * @param rtol   forward and backward outputs against the float64 reference, with the rule of
     *               {@link GradientCheck}: {@code |a - b| <= rtol · (|b| + max|b|)}
     * @param fdRtol the backend's analytic gradient against central differences of the backend's
     *               own forward, {@code |fd - g| <= fdRtol · (|g| + max|g|)}
     * @param fdStep the step {@code h} of those central differences (the quotient divides by the
     *               perturbation actually stored, so a step that rounds in the element type is fine)
     */
    public record Tolerances(double rtol, double fdRtol, double fdStep) {
    }

    /**
     * The tolerances for tensors of {@code dtype}. The defaults:
     * <ul>
     *   <li>FP32: {@code rtol = 1e-5}, about 100 ulps relative to the tensor's magnitude, enough for
     *       fp32 sums of a few hundred terms in any order; {@code fdStep = 1e-2} on inputs of order
     *       one, which keeps the truncation error (O(h²)) and the fp32 rounding of the objective
     *       (about 1e-7/h relative) both near 1e-4, so {@code fdRtol = 1e-2} still catches any
     *       wrong term of a gradient.
     *   <li>BF16 (8-bit mantissa, rounding 2^-9 ≈ 2e-3 per value): {@code rtol = 3e-2},
     *       {@code fdStep = 1e-1}, {@code fdRtol = 1e-1}. A first guess for a GPU backend; it may
     *       override this method with the numbers it can justify.
     * </ul>
     */
    protected Tolerances tolerances(DType dtype) {
        return switch (dtype) {
            case FP32 -> new Tolerances(1e-5, 1e-2, 1e-2);
            case BF16 -> new Tolerances(3e-2, 1e-1, 1e-1);
            case INT32 -> throw new IllegalArgumentException("INT32 tensors are compared exactly");
        };
    }

    /**
     * The element type of activations, weights, activation gradients and parameter gradients
     * ({@code out}, {@code inp}, {@code weight}, {@code qkv}, {@code logits}, AdamW's
     * {@code params} and {@code grads}, ...). FP32 by default; a BF16 backend returns BF16 and the
     * suite rounds its inputs to bf16 before computing the reference. Buffers the interface
     * documents as FP32 ({@code losses}, {@code sumOfSquares}'s {@code out}, AdamW's {@code m},
     * {@code v} and {@code master}) are always FP32.
     */
    protected DType floatType() {
        return DType.FP32;
    }

    /** The element type of the saved statistics: LayerNorm's mean and rstd, attention's lse. */
    protected DType statisticsType() {
        return DType.FP32;
    }

    /** Offset of every slice the suite uses within its guarded parent buffer, in elements. */
    protected long guardElements() {
        return 16;
    }

    /** The backend under test. */
    protected Backend backend;

    private final List<Tensor> tensors = new ArrayList<>();

    @BeforeAll
    void openBackend() {
        backend = createBackend();
    }

    @AfterAll
    void closeBackend() {
        if (backend != null) {
            backend.close();
        }
    }

    @AfterEach
    void checkGuardsAndFree() {
        try {
            backend.synchronize();
            for (Tensor t : tensors) {
                t.assertGuardsIntact();
            }
        } finally {
            for (Tensor t : tensors) {
                t.parent.close();
            }
            tensors.clear();
        }
    }

    private Tolerances tol() {
        return tolerances(floatType());
    }

    // =====================================================================================
    // Memory
    // =====================================================================================

    @Test
    void allocatedBuffersAreZeroFilled() {
        for (DType dt : new DType[]{floatType(), DType.FP32, DType.INT32}) {
            try (Buffer b = backend.allocate(dt, 1000)) {
                assertEquals(dt, b.dtype());
                assertEquals(1000, b.length());
                if (dt == DType.INT32) {
                    int[] host = new int[1000];
                    Arrays.fill(host, 7);
                    backend.download(b, MemorySegment.ofArray(host));
                    assertArrayEquals(new int[1000], host);
                } else {
                    float[] host = Host.download(backend, b);
                    assertArrayEquals(new float[1000], host, dt + " buffer");
                }
            }
        }
    }

    @Test
    void uploadAndDownloadRoundTripThroughSlicesThatShareTheirParentsMemory() {
        Random rnd = new Random(1);
        float[] values = gaussian(rnd, 37, 1);
        Tensor t = floats(values);
        assertEquals(37, t.buf.length());
        assertArrayEquals(Host.round(values, floatType()), t.read());
        // the slice is a view: its values show in the parent at the slice's offset
        float[] whole = Host.download(backend, t.parent);
        assertArrayEquals(Host.round(values, floatType()),
                Arrays.copyOfRange(whole, (int) guardElements(), (int) guardElements() + 37));
        // a slice of a slice
        Buffer inner = t.buf.slice(5, 10);
        float[] ten = gaussian(rnd, 10, 1);
        backend.upload(inner, Host.segment(ten, floatType()));
        float[] expect = Host.round(values, floatType());
        System.arraycopy(Host.round(ten, floatType()), 0, expect, 5, 10);
        assertArrayEquals(expect, t.read());
        int[] ids = {3, -4, 1 << 30, 0, 9};
        Tensor it = ints(ids);
        assertArrayEquals(ids, it.readInts());
    }

    @Test
    void zeroClearsExactlyTheSlice() {
        Tensor t = floats(gaussian(new Random(2), 29, 1));
        backend.zero(t.buf);
        assertArrayEquals(new float[29], t.read());
        Tensor i = ints(new int[]{1, 2, 3, 4, 5});
        backend.zero(i.buf);
        assertArrayEquals(new int[5], i.readInts());
        // the guards around both are checked after the test
    }

    @Test
    void copyCopiesOneBufferIntoAnother() {
        Random rnd = new Random(3);
        float[] values = gaussian(rnd, 41, 1);
        Tensor src = floats(values);
        Tensor dst = floats(gaussian(rnd, 41, 1));
        backend.copy(dst.buf, src.buf);
        assertArrayEquals(Host.round(values, floatType()), dst.read());
        assertArrayEquals(Host.round(values, floatType()), src.read());
    }

    @Test
    void sliceOutsideTheBufferIsRejected() {
        try (Buffer b = backend.allocate(DType.FP32, 10)) {
            assertThrows(IndexOutOfBoundsException.class, () -> b.slice(5, 6));
            assertThrows(IndexOutOfBoundsException.class, () -> b.slice(-1, 2));
            assertThrows(IndexOutOfBoundsException.class, () -> b.slice(11, 0));
            assertEquals(0, b.slice(10, 0).length());
            Buffer s = b.slice(2, 6);
            assertThrows(IndexOutOfBoundsException.class, () -> s.slice(3, 4));
        }
    }

    @Test
    void allocatingAnUnsupportedDtypeIsRejected() {
        for (DType dt : DType.values()) {
            if (!backend.supports(dt)) {
                assertThrows(UnsupportedOperationException.class, () -> backend.allocate(dt, 4));
            }
        }
        assertTrue(backend.supports(DType.FP32) || backend.supports(DType.BF16));
        assertTrue(backend.supports(DType.INT32));
        assertTrue(backend.supports(floatType()));
    }

    @Test
    void uploadOfTheWrongByteCountIsRejected() {
        Tensor t = floats(new float[8]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> backend.upload(t.buf, MemorySegment.ofArray(new byte[7 * floatType().bytes()])));
        assertMentions(e, "bytes");
        e = assertThrows(IllegalArgumentException.class,
                () -> backend.download(t.buf, MemorySegment.ofArray(new byte[9 * floatType().bytes()])));
        assertMentions(e, "bytes");
    }

    // =====================================================================================
    // Encoder
    // =====================================================================================

    /** b = 2, t = 7 of maxT = 10 positions, c = 24, a vocabulary of 11 with repeated tokens. */
    private final class EncoderCase {
        final int b = 2, t = 7, c = 24, vocab = 11, maxT = 10;
        final int[] tokens = {0, 3, 3, 10, 5, 3, 0, 7, 10, 1, 1, 2, 9, 3};
        final Tensor tok = ints(tokens);
        final Tensor wte, wpe, out;
        final double[] w;

        EncoderCase(long seed) {
            Random rnd = new Random(seed);
            wte = floats(gaussian(rnd, vocab * c, 1));
            wpe = floats(gaussian(rnd, maxT * c, 1));
            out = floats(gaussian(rnd, b * t * c, 1)); // garbage, to be overwritten
            w = toDouble(gaussian(rnd, b * t * c, 1));
        }

        void forward() {
            backend.encoderForward(out.buf, tok.buf, wte.buf, wpe.buf, b, t, c);
        }

        double[] referenceForward(double[] wteV, double[] wpeV) {
            double[] o = new double[b * t * c];
            Reference64.encoderForward(o, tokens, wteV, wpeV, b, t, c);
            return o;
        }
    }

    @Test
    void encoderForwardMatchesReference() {
        EncoderCase e = new EncoderCase(10);
        e.forward();
        assertClose("encoder out", e.out.read(), e.referenceForward(e.wte.values(), e.wpe.values()), tol().rtol());
    }

    @Test
    void encoderForwardIgnoresPositionRowsBeyondT() {
        EncoderCase e = new EncoderCase(11);
        float[] pe = e.wpe.read();
        Arrays.fill(pe, e.t * e.c, pe.length, Float.NaN);
        e.wpe.write(pe);
        e.forward();
        assertClose("encoder out", e.out.read(), e.referenceForward(e.wte.values(), e.wpe.values()), tol().rtol());
    }

    @Test
    void encoderBackwardMatchesReference() {
        EncoderCase e = new EncoderCase(12);
        Tensor dout = floats(Host.toFloat(e.w));
        Tensor dwte = floats(new float[e.vocab * e.c]);
        Tensor dwpe = floats(new float[e.maxT * e.c]);
        backend.encoderBackward(dwte.buf, dwpe.buf, dout.buf, e.tok.buf, e.b, e.t, e.c);
        double[] rwte = new double[e.vocab * e.c], rwpe = new double[e.maxT * e.c];
        Reference64.encoderBackward(rwte, rwpe, dout.values(), e.tokens, e.b, e.t, e.c);
        assertClose("dwte", dwte.read(), rwte, tol().rtol());
        assertClose("dwpe", dwpe.read(), rwpe, tol().rtol());
    }

    @Test
    void encoderBackwardAccumulatesIntoPrefilledGradients() {
        EncoderCase e = new EncoderCase(13);
        Random rnd = new Random(14);
        Tensor dout = floats(Host.toFloat(e.w));
        Tensor dwte = floats(gaussian(rnd, e.vocab * e.c, 1));
        Tensor dwpe = floats(gaussian(rnd, e.maxT * e.c, 1));
        double[] rwte = dwte.values(), rwpe = dwpe.values();
        backend.encoderBackward(dwte.buf, dwpe.buf, dout.buf, e.tok.buf, e.b, e.t, e.c);
        Reference64.encoderBackward(rwte, rwpe, dout.values(), e.tokens, e.b, e.t, e.c);
        assertClose("dwte", dwte.read(), rwte, tol().rtol());
        // rows of dwpe at positions >= t keep their values exactly
        float[] pe = dwpe.read();
        assertClose("dwpe", pe, rwpe, tol().rtol());
        for (int i = e.t * e.c; i < pe.length; i++) {
            assertEquals((float) rwpe[i], pe[i], "dwpe beyond t at " + i);
        }
    }

    @Test
    void encoderBackwardAgreesWithFiniteDifferences() {
        EncoderCase e = new EncoderCase(15);
        Random rnd = new Random(16);
        double[] wteV = e.wte.values(), wpeV = e.wpe.values();
        double[] gwte = new double[wteV.length], gwpe = new double[wpeV.length];
        Reference64.encoderBackward(gwte, gwpe, e.w, e.tokens, e.b, e.t, e.c);
        DoubleSupplier ref = () -> dot(e.w, e.referenceForward(wteV, wpeV));
        assertReferenceGradient("dwte", wteV, gwte, sample(rnd, wteV.length, 12), ref);
        assertReferenceGradient("dwpe", wpeV, gwpe, sample(rnd, wpeV.length, 12), ref);

        Tensor dout = floats(Host.toFloat(e.w));
        Tensor dwte = floats(new float[wteV.length]);
        Tensor dwpe = floats(new float[wpeV.length]);
        backend.encoderBackward(dwte.buf, dwpe.buf, dout.buf, e.tok.buf, e.b, e.t, e.c);
        DoubleSupplier obj = () -> {
            e.forward();
            return dot(dout.values(), e.out.read());
        };
        assertBackendGradient("dwte", e.wte, dwte.values(), sample(rnd, wteV.length, 8), obj);
        assertBackendGradient("dwpe", e.wpe, dwpe.values(), sample(rnd, e.t * e.c, 8), obj);
    }

    // =====================================================================================
    // LayerNorm
    // =====================================================================================

    /** n = 2·7 rows of c = 52 channels, inputs with a non-zero mean. */
    private final class LayerNormCase {
        final int n = 14, c = 52;
        final Tensor inp, weight, bias, out, mean, rstd;
        final double[] w;

        LayerNormCase(long seed) {
            Random rnd = new Random(seed);
            float[] x = gaussian(rnd, n * c, 1.5);
            for (int i = 0; i < x.length; i++) {
                x[i] += 0.7f * (i / c % 3); // rows with different means
            }
            inp = floats(x);
            weight = floats(GradientCheck.uniform(rnd, c, 0.5, 1.5));
            bias = floats(gaussian(rnd, c, 0.5));
            out = floats(gaussian(rnd, n * c, 1));
            mean = stats(gaussian(rnd, n, 1));
            rstd = stats(gaussian(rnd, n, 1));
            w = toDouble(gaussian(rnd, n * c, 1));
        }

        void forward() {
            backend.layerNormForward(out.buf, mean.buf, rstd.buf, inp.buf, weight.buf, bias.buf, n, c);
        }

        double[] referenceForward(double[] x, double[] wt, double[] bs) {
            double[] o = new double[n * c];
            Reference64.layerNormForward(o, new double[n], new double[n], x, wt, bs, n, c);
            return o;
        }
    }

    @Test
    void layerNormForwardMatchesReferenceAndSavesMeanAndRstd() {
        LayerNormCase l = new LayerNormCase(20);
        l.forward();
        double[] out = new double[l.n * l.c], mean = new double[l.n], rstd = new double[l.n];
        Reference64.layerNormForward(out, mean, rstd, l.inp.values(), l.weight.values(), l.bias.values(), l.n, l.c);
        assertClose("layernorm out", l.out.read(), out, tol().rtol());
        assertClose("layernorm mean", l.mean.read(), mean, tolerances(statisticsType()).rtol());
        assertClose("layernorm rstd", l.rstd.read(), rstd, tolerances(statisticsType()).rtol());
    }

    @Test
    void layerNormBackwardMatchesReference() {
        LayerNormCase l = new LayerNormCase(21);
        l.forward();
        Tensor dout = floats(Host.toFloat(l.w));
        Tensor dinp = floats(new float[l.n * l.c]), dw = floats(new float[l.c]), db = floats(new float[l.c]);
        backend.layerNormBackward(dinp.buf, dw.buf, db.buf, dout.buf, l.inp.buf, l.weight.buf, l.mean.buf,
                l.rstd.buf, l.n, l.c);
        double[] rinp = new double[l.n * l.c], rw = new double[l.c], rb = new double[l.c];
        Reference64.layerNormBackward(rinp, rw, rb, dout.values(), l.inp.values(), l.weight.values(), l.n, l.c);
        assertClose("layernorm dinp", dinp.read(), rinp, tol().rtol());
        assertClose("layernorm dweight", dw.read(), rw, tol().rtol());
        assertClose("layernorm dbias", db.read(), rb, tol().rtol());
    }

    @Test
    void layerNormBackwardAccumulatesIntoPrefilledGradients() {
        LayerNormCase l = new LayerNormCase(22);
        Random rnd = new Random(23);
        l.forward();
        Tensor dout = floats(Host.toFloat(l.w));
        Tensor dinp = floats(gaussian(rnd, l.n * l.c, 1)), dw = floats(gaussian(rnd, l.c, 1)),
                db = floats(gaussian(rnd, l.c, 1));
        double[] rinp = dinp.values(), rw = dw.values(), rb = db.values();
        backend.layerNormBackward(dinp.buf, dw.buf, db.buf, dout.buf, l.inp.buf, l.weight.buf, l.mean.buf,
                l.rstd.buf, l.n, l.c);
        Reference64.layerNormBackward(rinp, rw, rb, dout.values(), l.inp.values(), l.weight.values(), l.n, l.c);
        assertClose("layernorm dinp", dinp.read(), rinp, tol().rtol());
        assertClose("layernorm dweight", dw.read(), rw, tol().rtol());
        assertClose("layernorm dbias", db.read(), rb, tol().rtol());
    }

    @Test
    void layerNormBackwardAgreesWithFiniteDifferences() {
        LayerNormCase l = new LayerNormCase(24);
        Random rnd = new Random(25);
        double[] x = l.inp.values(), wt = l.weight.values(), bs = l.bias.values();
        double[] gx = new double[x.length], gw = new double[wt.length], gb = new double[bs.length];
        Reference64.layerNormBackward(gx, gw, gb, l.w, x, wt, l.n, l.c);
        DoubleSupplier ref = () -> dot(l.w, l.referenceForward(x, wt, bs));
        assertReferenceGradient("layernorm dinp", x, gx, sample(rnd, x.length, 12), ref);
        assertReferenceGradient("layernorm dweight", wt, gw, sample(rnd, wt.length, 8), ref);
        assertReferenceGradient("layernorm dbias", bs, gb, sample(rnd, bs.length, 8), ref);

        l.forward();
        Tensor dout = floats(Host.toFloat(l.w));
        Tensor dinp = floats(new float[x.length]), dw = floats(new float[l.c]), db = floats(new float[l.c]);
        backend.layerNormBackward(dinp.buf, dw.buf, db.buf, dout.buf, l.inp.buf, l.weight.buf, l.mean.buf,
                l.rstd.buf, l.n, l.c);
        DoubleSupplier obj = () -> {
            l.forward();
            return dot(dout.values(), l.out.read());
        };
        assertBackendGradient("layernorm dinp", l.inp, dinp.values(), sample(rnd, x.length, 8), obj);
        assertBackendGradient("layernorm dweight", l.weight, dw.values(), sample(rnd, l.c, 6), obj);
        assertBackendGradient("layernorm dbias", l.bias, db.values(), sample(rnd, l.c, 6), obj);
    }

    // =====================================================================================
    // Matmul
    // =====================================================================================

    /** out[n, oc] = inp[n, c] · weight[oc, c]ᵀ + bias. */
    private final class MatmulCase {
        final int n, c, oc;
        final Tensor inp, weight, bias, out;
        final double[] w;

        MatmulCase(long seed, int n, int c, int oc) {
            this.n = n;
            this.c = c;
            this.oc = oc;
            Random rnd = new Random(seed);
            inp = floats(gaussian(rnd, n * c, 1));
            weight = floats(gaussian(rnd, oc * c, 1 / Math.sqrt(c)));
            bias = floats(gaussian(rnd, oc, 1));
            out = floats(gaussian(rnd, n * oc, 1));
            w = toDouble(gaussian(rnd, n * oc, 1));
        }

        void forward(boolean withBias) {
            backend.matmulForward(out.buf, inp.buf, weight.buf, withBias ? bias.buf : null, n, c, oc);
        }

        double[] referenceForward(double[] x, double[] wt, double[] bs) {
            double[] o = new double[n * oc];
            Reference64.matmulForward(o, x, wt, bs, n, c, oc);
            return o;
        }

        String shape() {
            return "[n=" + n + ", c=" + c + ", oc=" + oc + "]";
        }
    }

    /** Awkward shapes: odd sizes, sizes just past powers of two, one row, one output. */
    private static final int[][] MATMUL_SHAPES = {{13, 37, 29}, {1, 5, 3}, {7, 1, 9}, {3, 11, 1}, {70, 136, 100},
            {33, 64, 65}};

    @Test
    void matmulForwardMatchesReference() {
        for (int[] s : MATMUL_SHAPES) {
            MatmulCase m = new MatmulCase(30 + s[0], s[0], s[1], s[2]);
            m.forward(true);
            assertClose("matmul out " + m.shape(), m.out.read(),
                    m.referenceForward(m.inp.values(), m.weight.values(), m.bias.values()), tol().rtol());
        }
    }

    @Test
    void matmulForwardWithoutBiasMatchesReference() {
        for (int[] s : MATMUL_SHAPES) {
            MatmulCase m = new MatmulCase(40 + s[0], s[0], s[1], s[2]);
            m.forward(false);
            assertClose("matmul out (no bias) " + m.shape(), m.out.read(),
                    m.referenceForward(m.inp.values(), m.weight.values(), null), tol().rtol());
        }
    }

    @Test
    void matmulBackwardMatchesReference() {
        for (int[] s : MATMUL_SHAPES) {
            MatmulCase m = new MatmulCase(50 + s[0], s[0], s[1], s[2]);
            Tensor dout = floats(Host.toFloat(m.w));
            Tensor dinp = floats(new float[m.n * m.c]), dw = floats(new float[m.oc * m.c]),
                    db = floats(new float[m.oc]);
            backend.matmulBackward(dinp.buf, dw.buf, db.buf, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc);
            double[] rinp = new double[m.n * m.c], rw = new double[m.oc * m.c], rb = new double[m.oc];
            Reference64.matmulBackward(rinp, rw, rb, dout.values(), m.inp.values(), m.weight.values(), m.n, m.c, m.oc);
            assertClose("matmul dinp " + m.shape(), dinp.read(), rinp, tol().rtol());
            assertClose("matmul dweight " + m.shape(), dw.read(), rw, tol().rtol());
            assertClose("matmul dbias " + m.shape(), db.read(), rb, tol().rtol());
        }
    }

    @Test
    void matmulBackwardWithoutSomeGradientsComputesTheRest() {
        MatmulCase m = new MatmulCase(60, 13, 37, 29);
        Random rnd = new Random(61);
        Tensor dout = floats(Host.toFloat(m.w));
        double[] rinp = new double[m.n * m.c], rw = new double[m.oc * m.c], rb = new double[m.oc];
        Reference64.matmulBackward(rinp, rw, rb, dout.values(), m.inp.values(), m.weight.values(), m.n, m.c, m.oc);

        // no dinp: dweight and dbias still accumulate
        Tensor dw = floats(gaussian(rnd, m.oc * m.c, 1)), db = floats(gaussian(rnd, m.oc, 1));
        double[] ew = plus(dw.values(), rw), eb = plus(db.values(), rb);
        backend.matmulBackward(null, dw.buf, db.buf, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc);
        assertClose("dweight (null dinp)", dw.read(), ew, tol().rtol());
        assertClose("dbias (null dinp)", db.read(), eb, tol().rtol());

        // no dbias
        Tensor dinp = floats(gaussian(rnd, m.n * m.c, 1));
        dw = floats(gaussian(rnd, m.oc * m.c, 1));
        double[] ei = plus(dinp.values(), rinp);
        ew = plus(dw.values(), rw);
        backend.matmulBackward(dinp.buf, dw.buf, null, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc);
        assertClose("dinp (null dbias)", dinp.read(), ei, tol().rtol());
        assertClose("dweight (null dbias)", dw.read(), ew, tol().rtol());

        // neither
        dw = floats(gaussian(rnd, m.oc * m.c, 1));
        ew = plus(dw.values(), rw);
        backend.matmulBackward(null, dw.buf, null, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc);
        assertClose("dweight (null dinp and dbias)", dw.read(), ew, tol().rtol());

        // frozen weight: dinp and dbias only, whether gradients accumulate or are overwritten
        dinp = floats(gaussian(rnd, m.n * m.c, 1));
        db = floats(gaussian(rnd, m.oc, 1));
        ei = plus(dinp.values(), rinp);
        backend.matmulBackward(dinp.buf, null, db.buf, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc, false);
        assertClose("dinp (null dweight)", dinp.read(), ei, tol().rtol());
        assertClose("dbias (null dweight)", db.read(), rb, tol().rtol());
    }

    @Test
    void matmulBackwardAccumulatesIntoPrefilledGradients() {
        for (int[] s : new int[][]{{13, 37, 29}, {70, 136, 100}}) {
            MatmulCase m = new MatmulCase(70 + s[0], s[0], s[1], s[2]);
            Random rnd = new Random(71);
            Tensor dout = floats(Host.toFloat(m.w));
            Tensor dinp = floats(gaussian(rnd, m.n * m.c, 1)), dw = floats(gaussian(rnd, m.oc * m.c, 1)),
                    db = floats(gaussian(rnd, m.oc, 1));
            double[] rinp = dinp.values(), rw = dw.values(), rb = db.values();
            backend.matmulBackward(dinp.buf, dw.buf, db.buf, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc);
            Reference64.matmulBackward(rinp, rw, rb, dout.values(), m.inp.values(), m.weight.values(), m.n, m.c, m.oc);
            assertClose("matmul dinp " + m.shape(), dinp.read(), rinp, tol().rtol());
            assertClose("matmul dweight " + m.shape(), dw.read(), rw, tol().rtol());
            assertClose("matmul dbias " + m.shape(), db.read(), rb, tol().rtol());
        }
    }

    @Test
    void matmulBackwardAgreesWithFiniteDifferences() {
        MatmulCase m = new MatmulCase(80, 13, 37, 29);
        Random rnd = new Random(81);
        double[] x = m.inp.values(), wt = m.weight.values(), bs = m.bias.values();
        double[] gx = new double[x.length], gw = new double[wt.length], gb = new double[bs.length];
        Reference64.matmulBackward(gx, gw, gb, m.w, x, wt, m.n, m.c, m.oc);
        DoubleSupplier ref = () -> dot(m.w, m.referenceForward(x, wt, bs));
        assertReferenceGradient("matmul dinp", x, gx, sample(rnd, x.length, 10), ref);
        assertReferenceGradient("matmul dweight", wt, gw, sample(rnd, wt.length, 10), ref);
        assertReferenceGradient("matmul dbias", bs, gb, sample(rnd, bs.length, 6), ref);

        Tensor dout = floats(Host.toFloat(m.w));
        Tensor dinp = floats(new float[x.length]), dw = floats(new float[wt.length]), db = floats(new float[m.oc]);
        backend.matmulBackward(dinp.buf, dw.buf, db.buf, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc);
        DoubleSupplier obj = () -> {
            m.forward(true);
            return dot(dout.values(), m.out.read());
        };
        assertBackendGradient("matmul dinp", m.inp, dinp.values(), sample(rnd, x.length, 6), obj);
        assertBackendGradient("matmul dweight", m.weight, dw.values(), sample(rnd, wt.length, 6), obj);
        assertBackendGradient("matmul dbias", m.bias, db.values(), sample(rnd, m.oc, 4), obj);
    }

    // =====================================================================================
    // Attention
    // =====================================================================================

    /** Causal self-attention on qkv [b, t, 3c]. */
    private final class AttentionCase {
        final int b, t, c, nh;
        final Tensor qkv, out, lse;
        final double[] w;

        AttentionCase(long seed, int b, int t, int c, int nh) {
            this.b = b;
            this.t = t;
            this.c = c;
            this.nh = nh;
            Random rnd = new Random(seed);
            // scores of order one to a few: softmax rows neither uniform nor one-hot
            qkv = floats(gaussian(rnd, b * t * 3 * c, 1.2));
            out = floats(gaussian(rnd, b * t * c, 1));
            lse = stats(gaussian(rnd, b * nh * t, 1));
            w = toDouble(gaussian(rnd, b * t * c, 1));
        }

        void forward() {
            backend.attentionForward(out.buf, lse.buf, qkv.buf, b, t, c, nh);
        }

        double[] referenceForward(double[] x) {
            double[] o = new double[b * t * c];
            Reference64.attentionForward(o, new double[b * nh * t], x, b, t, c, nh);
            return o;
        }

        String shape() {
            return "[b=" + b + ", t=" + t + ", c=" + c + ", nh=" + nh + "]";
        }
    }

    /**
     * Head sizes 16 and 8, t not a multiple of 8, a single position, a longer sequence, head sizes 64
     * and 128 over more than one 64-row tile, ending mid-tile (where a GPU backend uses its
     * tensor-core kernels), and one long enough to cross a backend's blocks of queries (the CPU's
     * are 96).
     */
    private static final int[][] ATTENTION_SHAPES = {{2, 7, 32, 2}, {1, 13, 24, 3}, {2, 1, 16, 2}, {1, 70, 64, 4},
            {3, 9, 8, 1}, {1, 67, 128, 2}, {2, 70, 256, 2}, {1, 203, 32, 2}};

    @Test
    void attentionForwardMatchesReferenceAndSavesRowLogSumExp() {
        for (int[] s : ATTENTION_SHAPES) {
            AttentionCase a = new AttentionCase(90 + s[1], s[0], s[1], s[2], s[3]);
            a.forward();
            double[] out = new double[a.b * a.t * a.c], lse = new double[a.b * a.nh * a.t];
            Reference64.attentionForward(out, lse, a.qkv.values(), a.b, a.t, a.c, a.nh);
            assertClose("attention out " + a.shape(), a.out.read(), out, tol().rtol());
            assertClose("attention lse " + a.shape(), a.lse.read(), lse, tolerances(statisticsType()).rtol());
        }
    }

    @Test
    void attentionBackwardMatchesReference() {
        for (int[] s : ATTENTION_SHAPES) {
            AttentionCase a = new AttentionCase(100 + s[1], s[0], s[1], s[2], s[3]);
            a.forward();
            Tensor dout = floats(Host.toFloat(a.w));
            Tensor dqkv = floats(new float[a.b * a.t * 3 * a.c]);
            backend.attentionBackward(dqkv.buf, dout.buf, a.qkv.buf, a.out.buf, a.lse.buf, a.b, a.t, a.c, a.nh);
            double[] ref = new double[a.b * a.t * 3 * a.c];
            Reference64.attentionBackward(ref, dout.values(), a.qkv.values(), a.b, a.t, a.c, a.nh);
            assertClose("attention dqkv " + a.shape(), dqkv.read(), ref, tol().rtol());
        }
    }

    @Test
    void attentionBackwardAccumulatesIntoPrefilledGradients() {
        for (int[] s : new int[][] {{2, 7, 32, 2}, {1, 67, 128, 2}}) {
            AttentionCase a = new AttentionCase(110 + s[1], s[0], s[1], s[2], s[3]);
            a.forward();
            Tensor dout = floats(Host.toFloat(a.w));
            Tensor dqkv = floats(gaussian(new Random(111), a.b * a.t * 3 * a.c, 1));
            double[] ref = dqkv.values();
            backend.attentionBackward(dqkv.buf, dout.buf, a.qkv.buf, a.out.buf, a.lse.buf, a.b, a.t, a.c, a.nh);
            Reference64.attentionBackward(ref, dout.values(), a.qkv.values(), a.b, a.t, a.c, a.nh);
            assertClose("attention dqkv " + a.shape(), dqkv.read(), ref, tol().rtol());
        }
    }

    @Test
    void attentionBackwardAgreesWithFiniteDifferences() {
        AttentionCase a = new AttentionCase(120, 2, 7, 32, 2);
        Random rnd = new Random(121);
        double[] x = a.qkv.values();
        double[] gx = new double[x.length];
        Reference64.attentionBackward(gx, a.w, x, a.b, a.t, a.c, a.nh);
        DoubleSupplier ref = () -> dot(a.w, a.referenceForward(x));
        assertReferenceGradient("attention dqkv", x, gx, sample(rnd, x.length, 24), ref);

        a.forward();
        Tensor dout = floats(Host.toFloat(a.w));
        Tensor dqkv = floats(new float[x.length]);
        backend.attentionBackward(dqkv.buf, dout.buf, a.qkv.buf, a.out.buf, a.lse.buf, a.b, a.t, a.c, a.nh);
        DoubleSupplier obj = () -> {
            a.forward();
            return dot(dout.values(), a.out.read());
        };
        assertBackendGradient("attention dqkv", a.qkv, dqkv.values(), sample(rnd, x.length, 16), obj);
    }

    // =====================================================================================
    // Fused ops: each against the float64 reference of the ops it composes
    // =====================================================================================

    @Test
    void matmulGeluForwardIsTheProjectionThenGelu() {
        for (int[] s : new int[][] {{13, 37, 29}, {33, 64, 128}}) {
            MatmulCase m = new MatmulCase(140 + s[0], s[0], s[1], s[2]);
            Tensor preact = floats(gaussian(new Random(141), m.n * m.oc, 1));
            backend.matmulGeluForward(m.out.buf, preact.buf, m.inp.buf, m.weight.buf, m.bias.buf, m.n, m.c, m.oc);
            double[] pre = m.referenceForward(m.inp.values(), m.weight.values(), m.bias.values());
            double[] out = new double[pre.length];
            Reference64.geluForward(out, pre, pre.length);
            assertClose("fused preact " + m.shape(), preact.read(), pre, tol().rtol());
            assertClose("fused gelu out " + m.shape(), m.out.read(), out, tol().rtol());
        }
    }

    @Test
    void matmulBackwardOverwritesParameterGradientsUnlessAccumulating() {
        MatmulCase m = new MatmulCase(150, 33, 64, 40);
        Random rnd = new Random(151);
        Tensor dout = floats(Host.toFloat(m.w));
        for (boolean accumulate : new boolean[] {false, true}) {
            Tensor dinp = floats(gaussian(rnd, m.n * m.c, 1));
            Tensor dw = floats(gaussian(rnd, m.oc * m.c, 1)), db = floats(gaussian(rnd, m.oc, 1));
            double[] gx = dinp.values(), gw = accumulate ? dw.values() : new double[m.oc * m.c];
            double[] gb = accumulate ? db.values() : new double[m.oc];
            backend.matmulBackward(dinp.buf, dw.buf, db.buf, dout.buf, m.inp.buf, m.weight.buf, m.n, m.c, m.oc,
                    accumulate);
            Reference64.matmulBackward(gx, gw, gb, dout.values(), m.inp.values(), m.weight.values(), m.n, m.c, m.oc);
            String how = accumulate ? " (accumulating)" : " (overwriting)";
            assertClose("dinp" + how, dinp.read(), gx, tol().rtol());
            assertClose("dweight" + how, dw.read(), gw, tol().rtol());
            assertClose("dbias" + how, db.read(), gb, tol().rtol());
        }
    }

    @Test
    void matmulGeluBackwardWritesThePreactivationGradient() {
        // the down-projection: inp = gelu(preact) [n, c] -> out [n, oc]
        int n = 21, c = 64, oc = 24;
        Random rnd = new Random(160);
        Tensor preact = floats(gaussian(rnd, n * c, 1.5));
        double[] act = new double[n * c];
        Reference64.geluForward(act, preact.values(), n * c);
        Tensor inp = floats(Host.toFloat(act));
        Tensor weight = floats(gaussian(rnd, oc * c, 1 / Math.sqrt(c)));
        Tensor dout = floats(gaussian(rnd, n * oc, 1));
        for (boolean accumulate : new boolean[] {false, true}) {
            Tensor dpreact = floats(gaussian(rnd, n * c, 100));  // garbage, to be overwritten
            Tensor scratch = floats(gaussian(rnd, n * c, 100));
            Tensor dw = floats(gaussian(rnd, oc * c, 1)), db = floats(gaussian(rnd, oc, 1));
            double[] dinp = new double[n * c], gw = accumulate ? dw.values() : new double[oc * c];
            double[] gb = accumulate ? db.values() : new double[oc];
            backend.matmulGeluBackward(dpreact.buf, scratch.buf, dw.buf, db.buf, dout.buf, inp.buf, weight.buf,
                    preact.buf, n, c, oc, accumulate);
            Reference64.matmulBackward(dinp, gw, gb, dout.values(), inp.values(), weight.values(), n, c, oc);
            double[] dpre = new double[n * c];
            Reference64.geluBackward(dpre, preact.values(), dinp, n * c);
            String how = accumulate ? " (accumulating)" : " (overwriting)";
            assertClose("dpreact" + how, dpreact.read(), dpre, tol().rtol());
            assertClose("dweight" + how, dw.read(), gw, tol().rtol());
            assertClose("dbias" + how, db.read(), gb, tol().rtol());
        }
    }

    @Test
    void residualLayerNormForwardNormalisesTheStoredSum() {
        int n = 19, c = 72;
        Random rnd = new Random(170);
        Tensor a = floats(gaussian(rnd, n * c, 1)), b = floats(gaussian(rnd, n * c, 1));
        Tensor weight = floats(gaussian(rnd, c, 1)), bias = floats(gaussian(rnd, c, 1));
        Tensor residual = floats(gaussian(rnd, n * c, 1)), out = floats(gaussian(rnd, n * c, 1));
        Tensor mean = stats(new float[n]), rstd = stats(new float[n]);
        backend.residualLayerNormForward(residual.buf, out.buf, mean.buf, rstd.buf, a.buf, b.buf, weight.buf, bias.buf,
                n, c);
        double[] sum = new double[n * c];
        Reference64.residualForward(sum, a.values(), b.values(), n * c);
        assertClose("residual", residual.read(), sum, tol().rtol());
        // The LayerNorm reads the sum as stored: the reference takes the stored values.
        double[] o = new double[n * c], mu = new double[n], rs = new double[n];
        Reference64.layerNormForward(o, mu, rs, residual.values(), weight.values(), bias.values(), n, c);
        assertClose("layernorm out", out.read(), o, tol().rtol());
        assertClose("mean", mean.read(), mu, tolerances(statisticsType()).rtol());
        assertClose("rstd", rstd.read(), rs, tolerances(statisticsType()).rtol());
    }

    // =====================================================================================
    // GELU and residual
    // =====================================================================================

    /** Above the CPU backend's parallel grain, odd, with tails of large |x|. */
    private static final int ELEMENTWISE_N = 70_001;

    private float[] geluInputs(Random rnd, int n) {
        float[] x = gaussian(rnd, n, 2);
        x[0] = 12f;
        x[1] = -12f;
        x[2] = 0f;
        return x;
    }

    @Test
    void geluForwardMatchesReference() {
        Random rnd = new Random(130);
        Tensor inp = floats(geluInputs(rnd, ELEMENTWISE_N));
        Tensor out = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        backend.geluForward(out.buf, inp.buf, ELEMENTWISE_N);
        double[] ref = new double[ELEMENTWISE_N];
        Reference64.geluForward(ref, inp.values(), ELEMENTWISE_N);
        assertClose("gelu out", out.read(), ref, tol().rtol());
    }

    @Test
    void geluBackwardMatchesReference() {
        Random rnd = new Random(131);
        Tensor inp = floats(geluInputs(rnd, ELEMENTWISE_N));
        Tensor dout = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        Tensor dinp = floats(new float[ELEMENTWISE_N]);
        backend.geluBackward(dinp.buf, inp.buf, dout.buf, ELEMENTWISE_N);
        double[] ref = new double[ELEMENTWISE_N];
        Reference64.geluBackward(ref, inp.values(), dout.values(), ELEMENTWISE_N);
        assertClose("gelu dinp", dinp.read(), ref, tol().rtol());
    }

    @Test
    void geluBackwardAccumulatesIntoPrefilledGradients() {
        Random rnd = new Random(132);
        Tensor inp = floats(geluInputs(rnd, ELEMENTWISE_N));
        Tensor dout = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        Tensor dinp = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        double[] ref = dinp.values();
        backend.geluBackward(dinp.buf, inp.buf, dout.buf, ELEMENTWISE_N);
        Reference64.geluBackward(ref, inp.values(), dout.values(), ELEMENTWISE_N);
        assertClose("gelu dinp", dinp.read(), ref, tol().rtol());
    }

    @Test
    void geluBackwardAgreesWithFiniteDifferences() {
        int n = 301;
        Random rnd = new Random(133);
        Tensor inp = floats(geluInputs(rnd, n));
        Tensor out = floats(new float[n]);
        double[] w = toDouble(gaussian(rnd, n, 1));
        double[] x = inp.values();
        double[] gx = new double[n];
        Reference64.geluBackward(gx, x, w, n);
        assertReferenceGradient("gelu dinp", x, gx, sample(rnd, n, 20), () -> {
            double[] o = new double[n];
            Reference64.geluForward(o, x, n);
            return dot(w, o);
        });
        Tensor dout = floats(Host.toFloat(w));
        Tensor dinp = floats(new float[n]);
        backend.geluBackward(dinp.buf, inp.buf, dout.buf, n);
        assertBackendGradient("gelu dinp", inp, dinp.values(), sample(rnd, n, 20), () -> {
            backend.geluForward(out.buf, inp.buf, n);
            return dot(dout.values(), out.read());
        });
    }

    @Test
    void residualForwardMatchesReference() {
        Random rnd = new Random(140);
        Tensor a = floats(gaussian(rnd, ELEMENTWISE_N, 1)), b = floats(gaussian(rnd, ELEMENTWISE_N, 3));
        Tensor out = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        backend.residualForward(out.buf, a.buf, b.buf, ELEMENTWISE_N);
        double[] ref = new double[ELEMENTWISE_N];
        Reference64.residualForward(ref, a.values(), b.values(), ELEMENTWISE_N);
        assertClose("residual out", out.read(), ref, tol().rtol());
    }

    @Test
    void residualBackwardMatchesReference() {
        Random rnd = new Random(141);
        Tensor dout = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        Tensor da = floats(new float[ELEMENTWISE_N]), db = floats(new float[ELEMENTWISE_N]);
        backend.residualBackward(da.buf, db.buf, dout.buf, ELEMENTWISE_N);
        double[] ra = new double[ELEMENTWISE_N], rb = new double[ELEMENTWISE_N];
        Reference64.residualBackward(ra, rb, dout.values(), ELEMENTWISE_N);
        assertClose("residual da", da.read(), ra, tol().rtol());
        assertClose("residual db", db.read(), rb, tol().rtol());
    }

    @Test
    void residualBackwardAccumulatesIntoPrefilledGradients() {
        Random rnd = new Random(142);
        Tensor dout = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        Tensor da = floats(gaussian(rnd, ELEMENTWISE_N, 1)), db = floats(gaussian(rnd, ELEMENTWISE_N, 1));
        double[] ra = da.values(), rb = db.values();
        backend.residualBackward(da.buf, db.buf, dout.buf, ELEMENTWISE_N);
        Reference64.residualBackward(ra, rb, dout.values(), ELEMENTWISE_N);
        assertClose("residual da", da.read(), ra, tol().rtol());
        assertClose("residual db", db.read(), rb, tol().rtol());
    }

    @Test
    void residualBackwardAgreesWithFiniteDifferences() {
        int n = 257;
        Random rnd = new Random(143);
        Tensor a = floats(gaussian(rnd, n, 1)), b = floats(gaussian(rnd, n, 1)), out = floats(new float[n]);
        double[] w = toDouble(gaussian(rnd, n, 1));
        double[] av = a.values(), bv = b.values();
        double[] ga = new double[n], gb = new double[n];
        Reference64.residualBackward(ga, gb, w, n);
        DoubleSupplier ref = () -> {
            double[] o = new double[n];
            Reference64.residualForward(o, av, bv, n);
            return dot(w, o);
        };
        assertReferenceGradient("residual da", av, ga, sample(rnd, n, 8), ref);
        assertReferenceGradient("residual db", bv, gb, sample(rnd, n, 8), ref);
        Tensor dout = floats(Host.toFloat(w));
        Tensor da = floats(new float[n]), db = floats(new float[n]);
        backend.residualBackward(da.buf, db.buf, dout.buf, n);
        DoubleSupplier obj = () -> {
            backend.residualForward(out.buf, a.buf, b.buf, n);
            return dot(dout.values(), out.read());
        };
        assertBackendGradient("residual da", a, da.values(), sample(rnd, n, 8), obj);
        assertBackendGradient("residual db", b, db.values(), sample(rnd, n, 8), obj);
    }

    // =====================================================================================
    // Softmax cross-entropy
    // =====================================================================================

    /** n = 11 rows, v = 50 of vp = 64 columns; the padding columns hold large garbage. */
    private final class CrossEntropyCase {
        final int n, v, vp;
        final int[] targets;
        final float[] logits;
        final Tensor tgt;

        CrossEntropyCase(long seed, int n, int v, int vp) {
            this.n = n;
            this.v = v;
            this.vp = vp;
            Random rnd = new Random(seed);
            logits = gaussian(rnd, n * vp, 2);
            for (int r = 0; r < n; r++) {
                for (int i = v; i < vp; i++) {
                    logits[r * vp + i] = 50f + rnd.nextFloat() * 10f; // would dominate if not ignored
                }
            }
            targets = new int[n];
            for (int r = 0; r < n; r++) {
                targets[r] = rnd.nextInt(v);
            }
            targets[0] = 0;
            targets[n - 1] = v - 1;
            tgt = ints(targets);
        }
    }

    @Test
    void softmaxCrossEntropyMatchesReferenceLossesAndGradient() {
        for (int[] s : new int[][]{{11, 50, 64}, {5, 37, 37}, {1, 2, 8}}) {
            CrossEntropyCase ce = new CrossEntropyCase(150 + s[1], s[0], s[1], s[2]);
            Tensor logits = floats(ce.logits);
            Tensor losses = fp32(gaussian(new Random(151), ce.n, 1));
            double[] z = logits.values();
            float gradScale = 1f / 7;
            backend.softmaxCrossEntropy(losses.buf, logits.buf, ce.tgt.buf, ce.n, ce.v, ce.vp, gradScale);
            double[] rl = new double[ce.n], rg = new double[ce.n * ce.vp];
            Reference64.crossEntropy(rl, rg, z, ce.targets, ce.n, ce.v, ce.vp, gradScale);
            String shape = "[n=" + ce.n + ", v=" + ce.v + ", vp=" + ce.vp + "]";
            assertClose("losses " + shape, losses.read(), rl, tolerances(DType.FP32).rtol());
            float[] g = logits.read();
            assertClose("dlogits " + shape, g, rg, tol().rtol());
            for (int r = 0; r < ce.n; r++) {
                for (int i = ce.v; i < ce.vp; i++) {
                    assertEquals(0f, g[r * ce.vp + i], "padding column " + i + " of row " + r + " " + shape);
                }
            }
        }
    }

    @Test
    void softmaxCrossEntropyWithZeroGradScaleLeavesLogitsUntouched() {
        CrossEntropyCase ce = new CrossEntropyCase(160, 11, 50, 64);
        Tensor logits = floats(ce.logits);
        float[] before = logits.read();
        Tensor losses = fp32(new float[ce.n]);
        backend.softmaxCrossEntropy(losses.buf, logits.buf, ce.tgt.buf, ce.n, ce.v, ce.vp, 0f);
        assertArrayEquals(before, logits.read());
        double[] rl = new double[ce.n];
        Reference64.crossEntropy(rl, null, toDouble(before), ce.targets, ce.n, ce.v, ce.vp, 0);
        assertClose("losses", losses.read(), rl, tolerances(DType.FP32).rtol());
    }

    @Test
    void softmaxCrossEntropyGradientAgreesWithFiniteDifferences() {
        CrossEntropyCase ce = new CrossEntropyCase(170, 11, 50, 64);
        Random rnd = new Random(171);
        double gradScale = 0.25;
        Tensor logits = floats(ce.logits);
        double[] z = logits.values();
        // reference: d(gradScale · Σ losses)/dlogits, padding columns included (gradient zero)
        double[] rg = new double[z.length];
        Reference64.crossEntropy(new double[ce.n], rg, z, ce.targets, ce.n, ce.v, ce.vp, gradScale);
        int[] coords = sample(rnd, z.length, 24);
        assertReferenceGradient("dlogits", z, rg, coords, () -> {
            double[] l = new double[ce.n];
            Reference64.crossEntropy(l, null, z, ce.targets, ce.n, ce.v, ce.vp, 0);
            return gradScale * Arrays.stream(l).sum();
        });
        // every row's target column is checked too
        int[] targetsAt = new int[ce.n];
        for (int r = 0; r < ce.n; r++) {
            targetsAt[r] = r * ce.vp + ce.targets[r];
        }

        Tensor grad = floats(ce.logits);
        Tensor losses = fp32(new float[ce.n]);
        backend.softmaxCrossEntropy(losses.buf, grad.buf, ce.tgt.buf, ce.n, ce.v, ce.vp, (float) gradScale);
        double[] g = grad.values();
        DoubleSupplier obj = () -> {
            backend.softmaxCrossEntropy(losses.buf, logits.buf, ce.tgt.buf, ce.n, ce.v, ce.vp, 0f);
            double sum = 0;
            for (float l : losses.read()) {
                sum += l;
            }
            return gradScale * sum;
        };
        assertBackendGradient("dlogits", logits, g, coords, obj);
        assertBackendGradient("dlogits at the targets", logits, g, targetsAt, obj);
    }

    // =====================================================================================
    // LM head fused with cross-entropy
    // =====================================================================================

    /**
     * n = 11 rows of c = 16 channels, v = 50 of vp = 64 vocabulary rows; the scratch holds 4 rows
     * of logits, so the op runs in chunks of 4, 4 and 3. The padding rows of the weight are large,
     * so their logits would dominate if not ignored.
     */
    private final class LmHeadCase {
        final int n = 11, c = 16, v = 50, vp = 64, scratchRows = 4;
        final int[] targets;
        final Tensor inp, weight, tgt;

        LmHeadCase(long seed) {
            Random rnd = new Random(seed);
            inp = floats(gaussian(rnd, n * c, 1));
            float[] w = gaussian(rnd, vp * c, 0.5);
            for (int i = v * c; i < vp * c; i++) {
                w[i] = 5f;
            }
            weight = floats(w);
            targets = new int[n];
            for (int r = 0; r < n; r++) {
                targets[r] = rnd.nextInt(v);
            }
            targets[n - 1] = v - 1;
            tgt = ints(targets);
        }

        Tensor scratch() {
            return floats(new float[scratchRows * vp]);
        }

        /** Float64 losses, and (when the arrays are given) gradients added into them. */
        void reference(double[] losses, double[] dinp, double[] dweight, double gradScale) {
            double[] x = inp.values(), w = weight.values();
            double[] z = new double[n * vp];
            Reference64.matmulForward(z, x, w, null, n, c, vp);
            double[] dz = dinp == null ? null : new double[n * vp];
            Reference64.crossEntropy(losses, dz, z, targets, n, v, vp, gradScale);
            if (dz != null) {
                Reference64.matmulBackward(dinp, dweight, null, dz, x, w, n, c, vp);
            }
        }
    }

    @Test
    void lmHeadCrossEntropyMatchesReferenceChunkByChunkOverwritingOrAccumulatingTheWeightGradient() {
        for (boolean accumulate : new boolean[] {false, true}) {
            LmHeadCase h = new LmHeadCase(190);
            Tensor losses = fp32(new float[h.n]);
            Tensor dinp = floats(gaussian(new Random(191), h.n * h.c, 1));
            Tensor dweight = floats(gaussian(new Random(192), h.vp * h.c, 1));  // garbage unless accumulating
            double[] rl = new double[h.n], rdinp = dinp.values();
            double[] rdw = accumulate ? dweight.values() : new double[h.vp * h.c];
            float[] paddingRows = accumulate ? Arrays.copyOfRange(dweight.read(), h.v * h.c, h.vp * h.c)
                    : new float[(h.vp - h.v) * h.c];
            float gradScale = 1f / 7;
            backend.lmHeadCrossEntropy(losses.buf, dinp.buf, dweight.buf, h.inp.buf, h.weight.buf, h.tgt.buf,
                    h.scratch().buf, h.n, h.c, h.v, h.vp, gradScale, accumulate);
            h.reference(rl, rdinp, rdw, gradScale);
            String how = accumulate ? " (accumulating)" : " (overwriting)";
            // the logits pass through the float type, so the losses carry its rounding
            assertClose("lm head losses" + how, losses.read(), rl, tol().rtol());
            assertClose("lm head dinp" + how, dinp.read(), rdinp, tol().rtol());
            assertClose("lm head dweight" + how, dweight.read(), rdw, tol().rtol());
            assertArrayEquals(paddingRows, Arrays.copyOfRange(dweight.read(), h.v * h.c, h.vp * h.c),
                    "the padding rows of the vocabulary get no gradient" + how);
        }
    }

    @Test
    void lmHeadCrossEntropyWithZeroGradScaleNeedsNoGradientBuffers() {
        LmHeadCase h = new LmHeadCase(200);
        Tensor losses = fp32(new float[h.n]);
        backend.lmHeadCrossEntropy(losses.buf, null, null, h.inp.buf, h.weight.buf, h.tgt.buf, h.scratch().buf,
                h.n, h.c, h.v, h.vp, 0f, true);
        double[] rl = new double[h.n];
        h.reference(rl, null, null, 0);
        // the logits pass through the float type, so the losses carry its rounding
        assertClose("lm head losses", losses.read(), rl, tol().rtol());
    }

    @Test
    void lmHeadCrossEntropyGradientAgreesWithFiniteDifferences() {
        LmHeadCase h = new LmHeadCase(210);
        Random rnd = new Random(211);
        double gradScale = 0.25;
        Tensor losses = fp32(new float[h.n]);
        Tensor scratch = h.scratch();
        Tensor dinp = floats(new float[h.n * h.c]), dweight = floats(new float[h.vp * h.c]);
        backend.lmHeadCrossEntropy(losses.buf, dinp.buf, dweight.buf, h.inp.buf, h.weight.buf, h.tgt.buf,
                scratch.buf, h.n, h.c, h.v, h.vp, (float) gradScale, true);
        DoubleSupplier obj = () -> {
            backend.lmHeadCrossEntropy(losses.buf, null, null, h.inp.buf, h.weight.buf, h.tgt.buf, scratch.buf,
                    h.n, h.c, h.v, h.vp, 0f, true);
            double sum = 0;
            for (float l : losses.read()) {
                sum += l;
            }
            return gradScale * sum;
        };
        assertBackendGradient("lm head dinp", h.inp, dinp.values(), sample(rnd, h.n * h.c, 16), obj);
        assertBackendGradient("lm head dweight", h.weight, dweight.values(), sample(rnd, h.v * h.c, 16), obj);
    }

    @Test
    void lmHeadCrossEntropyRejectsAScratchTooSmallForOneRow() {
        LmHeadCase h = new LmHeadCase(220);
        Tensor losses = fp32(new float[h.n]);
        Tensor tiny = floats(new float[h.vp - 1]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.lmHeadCrossEntropy(
                losses.buf, null, null, h.inp.buf, h.weight.buf, h.tgt.buf, tiny.buf, h.n, h.c, h.v, h.vp, 0f, true));
        assertTrue(e.getMessage().contains("scratch"), e.getMessage());
    }

    @Test
    void softmaxCrossEntropyIsStableForLargeLogits() {
        CrossEntropyCase ce = new CrossEntropyCase(180, 5, 40, 48);
        float[] z = ce.logits.clone();
        for (int r = 0; r < ce.n; r++) {
            for (int i = 0; i < ce.v; i++) {
                z[r * ce.vp + i] += (r % 2 == 0 ? 1000f : -1000f);
            }
        }
        Tensor logits = floats(z);
        double[] zv = logits.values();
        Tensor losses = fp32(new float[ce.n]);
        backend.softmaxCrossEntropy(losses.buf, logits.buf, ce.tgt.buf, ce.n, ce.v, ce.vp, 1f);
        double[] rl = new double[ce.n], rg = new double[z.length];
        Reference64.crossEntropy(rl, rg, zv, ce.targets, ce.n, ce.v, ce.vp, 1);
        // a logit near 1000 carries fp32 rounding of about 3e-5, which the loss inherits
        float[] l = losses.read();
        for (int r = 0; r < ce.n; r++) {
            assertTrue(Math.abs(l[r] - rl[r]) <= 1e-3 + tol().rtol() * Math.abs(rl[r]),
                    "loss of row " + r + ": " + l[r] + ", expected " + rl[r]);
        }
        assertClose("dlogits", logits.read(), rg, tol().rtol());
    }

    // =====================================================================================
    // Optimizer
    // =====================================================================================

    @Test
    void adamwMatchesTorchWithWeightDecay() {
        checkAdamW(0.1f);
    }

    @Test
    void adamwMatchesTorchWithoutWeightDecay() {
        checkAdamW(0f);
    }

    /**
     * Three AdamW steps with fresh gradients each, compared after every step (so at steps 1 and 3
     * in particular) with the torch update in float64, gradScale 0.5 folded in first.
     */
    private void checkAdamW(float wd) {
        int n = 1537;
        Random rnd = new Random(190 + (long) (wd * 100));
        // parameters small enough that a wrong update (about lr per step) shows at rtol
        float[] p0 = gaussian(rnd, n, 0.02);
        p0[0] = 1f; // gets a zero gradient every step: only the decay moves it
        Tensor params = floats(p0);
        Tensor m = fp32(new float[n]), v = fp32(new float[n]);
        Tensor master = floatType() == DType.FP32 ? null : fp32(params.read());
        Tensor exact = master == null ? params : master;
        double[] rp = params.values(), rm = new double[n], rv = new double[n];
        for (int step = 1; step <= 3; step++) {
            float[] g = gaussian(rnd, n, 0.1);
            g[0] = 0f;
            g[1] = 1e-9f; // a gradient far below eps
            Tensor grads = floats(g);
            AdamWStep s = new AdamWStep(3e-3f, 0.9f, 0.95f, 1e-8f, wd, step, 0.5f);
            backend.adamw(params.buf, master == null ? null : master.buf, grads.buf, m.buf, v.buf, s);
            Reference64.adamw(rp, grads.values(), rm, rv, s);
            String at = " after step " + step + " (wd " + wd + ")";
            assertClose("m" + at, m.read(), rm, tolerances(DType.FP32).rtol());
            assertClose("v" + at, v.read(), rv, tolerances(DType.FP32).rtol());
            assertClose("params" + at, exact.read(), rp, tolerances(exact.dtype).rtol());
            if (master != null) {
                assertClose("bf16 params" + at, params.read(), rp, tol().rtol());
            }
            // decay alone changes p[0] by lr·wd = 3e-4 relative per step; a float step is exact to 1e-7
            assertCloseScalar("decay-only parameter" + at, exact.read()[0], rp[0], 1e-6);
        }
    }

    @Test
    void gradientClipComputesClipGradNormsFactorWhereTheGradientsAre() {
        // {Σg², maxNorm} -> {norm, factor}: clipped, not clipped, clipping off, and a diverged norm
        float[][] cases = {{16f, 1f, 4f, 1f / (4f + 1e-6f)}, {0.25f, 1f, 0.5f, 1f}, {16f, 0f, 4f, 1f},
                {Float.POSITIVE_INFINITY, 1f, Float.POSITIVE_INFINITY, Float.NaN}};
        for (float[] c : cases) {
            Tensor sum = fp32(new float[] {c[0]}), out = fp32(new float[] {7f, 7f});
            backend.gradientClip(out.buf, sum.buf, c[1]);
            float[] got = out.read();
            assertEquals(c[2], got[0], Math.ulp(c[2]), "norm of Σg² = " + c[0]);
            assertEquals(c[3], got[1], Math.ulp(1f), "factor for Σg² = " + c[0] + ", max norm " + c[1]);
        }
    }

    @Test
    void adamwReadsItsGradientScaleFromTheBackendAndSkipsANonFiniteOne() {
        int n = 300;
        Random rnd = new Random(195);
        float[] p0 = gaussian(rnd, n, 0.02), g = gaussian(rnd, n, 0.1);
        AdamWStep s = new AdamWStep(3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 123f);  // 123: must not be used
        Tensor grads = floats(g);
        Tensor viaHost = floats(p0), m1 = fp32(new float[n]), v1 = fp32(new float[n]);
        Tensor viaDevice = floats(p0), m2 = fp32(new float[n]), v2 = fp32(new float[n]);
        Tensor master1 = floatType() == DType.FP32 ? null : fp32(viaHost.read());
        Tensor master2 = floatType() == DType.FP32 ? null : fp32(viaDevice.read());
        backend.adamw(viaHost.buf, master1 == null ? null : master1.buf, grads.buf, m1.buf, v1.buf,
                s.withGradScale(0.5f));
        backend.adamw(viaDevice.buf, master2 == null ? null : master2.buf, grads.buf, m2.buf, v2.buf, s,
                fp32(new float[] {0.5f}).buf);
        assertArrayEquals(viaHost.read(), viaDevice.read(), "params");
        assertArrayEquals(m1.read(), m2.read(), "m");
        assertArrayEquals(v1.read(), v2.read(), "v");
        float[] before = viaDevice.read(), mBefore = m2.read();
        backend.adamw(viaDevice.buf, master2 == null ? null : master2.buf, grads.buf, m2.buf, v2.buf,
                new AdamWStep(3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 2, 1f), fp32(new float[] {Float.NaN}).buf);
        assertArrayEquals(before, viaDevice.read(), "params after a NaN scale");
        assertArrayEquals(mBefore, m2.read(), "m after a NaN scale");
    }

    /**
     * A hand-computable torch anchor: at step 1, m̂ = g and v̂ = g², so (eps aside) every
     * parameter moves by exactly {@code lr} against the sign of its gradient after the decay:
     * {@code p1 = p0·(1 - lr·wd) - lr·sign(g)}, whatever gradScale (here 4) does to g's size.
     */
    @Test
    void adamwFirstStepMovesEachParameterByLrAgainstItsGradientAfterDecay() {
        float[] p0 = {1f, -2f, 0.5f, 3f};
        float[] g = {0.25f, -3f, 1e-2f, -1e-3f};
        Tensor params = floats(p0);
        Tensor grads = floats(g);
        Tensor m = fp32(new float[4]), v = fp32(new float[4]);
        Tensor master = floatType() == DType.FP32 ? null : fp32(params.read());
        float lr = 0.0625f, wd = 0.5f;
        backend.adamw(params.buf, master == null ? null : master.buf, grads.buf, m.buf, v.buf,
                new AdamWStep(lr, 0.9f, 0.999f, 1e-12f, wd, 1, 4f));
        double[] expected = new double[4];
        double[] gv = grads.values(), pv = toDouble(Host.round(p0, floatType()));
        for (int i = 0; i < 4; i++) {
            expected[i] = pv[i] * (1 - (double) lr * wd) - lr * Math.signum(gv[i]);
        }
        assertClose("params after step 1", (master == null ? params : master).read(), expected,
                tolerances(DType.FP32).rtol());
        // m = (1 - 0.9)·4g and v = (1 - 0.999)·16g²
        double[] em = new double[4], ev = new double[4];
        for (int i = 0; i < 4; i++) {
            em[i] = (1 - 0.9f) * 4 * gv[i];
            ev[i] = (1 - 0.999f) * 16 * gv[i] * gv[i];
        }
        assertClose("m after step 1", m.read(), em, tolerances(DType.FP32).rtol());
        assertClose("v after step 1", v.read(), ev, tolerances(DType.FP32).rtol());
    }

    @Test
    void adamwUpdateSizeMatchesTorch() {
        // params large relative to the update would hide a wrong step; use params near zero
        int n = 999;
        Random rnd = new Random(200);
        Tensor params = floats(gaussian(rnd, n, 1e-3));
        Tensor m = fp32(gaussian(rnd, n, 1e-2)), v = fp32(GradientCheck.uniform(rnd, n, 1e-5, 1e-3));
        Tensor master = floatType() == DType.FP32 ? null : fp32(params.read());
        double[] rp = params.values(), rm = m.values(), rv = v.values();
        Tensor grads = floats(gaussian(rnd, n, 0.03));
        AdamWStep s = new AdamWStep(1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 3, 2f);
        backend.adamw(params.buf, master == null ? null : master.buf, grads.buf, m.buf, v.buf, s);
        Reference64.adamw(rp, grads.values(), rm, rv, s);
        assertClose("m", m.read(), rm, tolerances(DType.FP32).rtol());
        assertClose("v", v.read(), rv, tolerances(DType.FP32).rtol());
        assertClose("params", (master == null ? params : master).read(), rp, tolerances(DType.FP32).rtol());
    }

    @Test
    void sumOfSquaresOfALargeBufferMatchesADoubleSum() {
        int n = 3_000_001;
        Random rnd = new Random(210);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rnd.nextGaussian() * (i % 1000 == 0 ? 30 : 1));
        }
        Tensor xs = floats(x);
        Tensor out = fp32(new float[]{123f});
        backend.sumOfSquares(out.buf, xs.buf);
        double ref = Reference64.sumOfSquares(xs.read());
        assertCloseScalar("sum of squares of 3M elements", out.read()[0], ref, tolerances(DType.FP32).rtol());
        // and a small one, with an exact answer
        Tensor small = floats(new float[]{1, -2, 3, 0.5f});
        backend.sumOfSquares(out.buf, small.buf);
        assertEquals(14.25f, out.read()[0]);
    }

    // =====================================================================================
    // Errors
    // =====================================================================================

    @Test
    void tooSmallABufferIsRejectedNamingTheArgument() {
        Random rnd = new Random(220);
        // matmul weight one element short
        MatmulCase m = new MatmulCase(221, 4, 6, 5);
        Tensor shortWeight = floats(gaussian(rnd, 5 * 6 - 1, 1));
        assertRejected(() -> backend.matmulForward(m.out.buf, m.inp.buf, shortWeight.buf, m.bias.buf, 4, 6, 5),
                "weight");
        // layernorm out one row short
        LayerNormCase l = new LayerNormCase(222);
        Tensor shortOut = floats(new float[(l.n - 1) * l.c]);
        assertRejected(() -> backend.layerNormForward(shortOut.buf, l.mean.buf, l.rstd.buf, l.inp.buf, l.weight.buf,
                l.bias.buf, l.n, l.c), "out");
        // encoder wpe with fewer than t rows
        EncoderCase e = new EncoderCase(223);
        Tensor shortWpe = floats(new float[(e.t - 1) * e.c]);
        assertRejected(() -> backend.encoderForward(e.out.buf, e.tok.buf, e.wte.buf, shortWpe.buf, e.b, e.t, e.c),
                "wpe");
        // attention qkv short
        Tensor shortQkv = floats(new float[2 * 7 * 3 * 32 - 1]);
        AttentionCase a = new AttentionCase(224, 2, 7, 32, 2);
        assertRejected(() -> backend.attentionForward(a.out.buf, a.lse.buf, shortQkv.buf, 2, 7, 32, 2), "qkv");
        // cross-entropy logits sized for v, not vp
        CrossEntropyCase ce = new CrossEntropyCase(225, 3, 10, 16);
        Tensor shortLogits = floats(new float[3 * 10]);
        Tensor losses = fp32(new float[3]);
        assertRejected(() -> backend.softmaxCrossEntropy(losses.buf, shortLogits.buf, ce.tgt.buf, 3, 10, 16, 1f),
                "logits");
        // adamw grads shorter than params
        Tensor p = floats(new float[10]), g = floats(new float[9]), mm = fp32(new float[10]), vv = fp32(new float[10]);
        Tensor master = floatType() == DType.FP32 ? null : fp32(new float[10]);
        assertRejected(() -> backend.adamw(p.buf, master == null ? null : master.buf, g.buf, mm.buf, vv.buf,
                new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0f, 1, 1f)), "grads");
    }

    @Test
    void aBufferOfTheWrongDtypeIsRejectedNamingTheArgument() {
        // an INT32 buffer where activations go
        Random rnd = new Random(230);
        Tensor intsAsFloats = ints(new int[16 * 8]);
        Tensor inp = floats(gaussian(rnd, 16 * 8, 1));
        assertRejected(() -> backend.geluForward(intsAsFloats.buf, inp.buf, 16 * 8), "out", "INT32", "FP32",
                floatType().name());
        // a float buffer where token ids go
        EncoderCase e = new EncoderCase(231);
        Tensor floatTokens = floats(new float[e.b * e.t]);
        assertRejected(() -> backend.encoderForward(e.out.buf, floatTokens.buf, e.wte.buf, e.wpe.buf, e.b, e.t, e.c),
                "tokens", "INT32", floatType().name());
        // an INT32 buffer for AdamW's first moments
        Tensor p = floats(new float[10]), g = floats(new float[10]), vv = fp32(new float[10]);
        Tensor intM = ints(new int[10]);
        Tensor master = floatType() == DType.FP32 ? null : fp32(new float[10]);
        assertRejected(() -> backend.adamw(p.buf, master == null ? null : master.buf, g.buf, intM.buf, vv.buf,
                new AdamWStep(1e-3f, 0.9f, 0.95f, 1e-8f, 0f, 1, 1f)), "m", "INT32", "FP32");
    }

    @Test
    void aTokenOutsideTheVocabularyIsRejected() {
        for (int bad : new int[]{11, -1, 1 << 20}) {
            EncoderCase e = new EncoderCase(240);
            int[] tokens = e.tokens.clone();
            tokens[9] = bad;
            Tensor tok = ints(tokens);
            assertRejectedWithValue(() -> backend.encoderForward(e.out.buf, tok.buf, e.wte.buf, e.wpe.buf, e.b, e.t,
                    e.c), "token", bad);
            Tensor dout = floats(new float[e.b * e.t * e.c]);
            Tensor dwte = floats(new float[e.vocab * e.c]), dwpe = floats(new float[e.maxT * e.c]);
            assertRejectedWithValue(() -> backend.encoderBackward(dwte.buf, dwpe.buf, dout.buf, tok.buf, e.b, e.t,
                    e.c), "token", bad);
        }
    }

    @Test
    void aTargetOutsideTheVocabularyIsRejected() {
        // v = 10 of vp = 16: a target in the padding [v, vp) is as wrong as one past vp
        for (int bad : new int[]{10, 15, 16, -1}) {
            CrossEntropyCase ce = new CrossEntropyCase(250, 3, 10, 16);
            int[] targets = ce.targets.clone();
            targets[1] = bad;
            Tensor tgt = ints(targets);
            Tensor logits = floats(ce.logits);
            Tensor losses = fp32(new float[3]);
            assertRejectedWithValue(() -> backend.softmaxCrossEntropy(losses.buf, logits.buf, tgt.buf, 3, 10, 16, 1f),
                    "target", bad);
            assertRejectedWithValue(() -> backend.softmaxCrossEntropy(losses.buf, logits.buf, tgt.buf, 3, 10, 16, 0f),
                    "target", bad);
        }
    }

    /**
     * Asserts {@code call} (followed by a {@link Backend#synchronize}, so an asynchronous backend
     * may report the error there) throws a {@link RuntimeException} whose message contains
     * {@code name} and, when {@code anyOf} is given, at least one of those words.
     */
    private void assertRejected(Executable call, String name, String... anyOf) {
        RuntimeException e = assertThrows(RuntimeException.class, () -> {
            call.execute();
            backend.synchronize();
        });
        assertMentions(e, name);
        if (anyOf.length > 0) {
            String msg = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
            assertTrue(Arrays.stream(anyOf).anyMatch(w -> msg.contains(w.toLowerCase(Locale.ROOT))),
                    "message \"" + e.getMessage() + "\" names none of " + Arrays.toString(anyOf));
        }
    }

    private void assertRejectedWithValue(Executable call, String word, int value) {
        RuntimeException e = assertThrows(RuntimeException.class, () -> {
            call.execute();
            backend.synchronize();
        }, word + " " + value);
        assertMentions(e, word);
        assertMentions(e, Integer.toString(value));
    }

    private static void assertMentions(Throwable e, String word) {
        String msg = String.valueOf(e.getMessage());
        assertTrue(msg.toLowerCase(Locale.ROOT).contains(word.toLowerCase(Locale.ROOT)),
                "message \"" + msg + "\" of " + e.getClass().getSimpleName() + " should mention \"" + word + "\"");
    }

    // =====================================================================================
    // Finite differences of the backend
    // =====================================================================================

    /**
     * Checks the backend's gradient {@code analytic} of {@code objective} with respect to tensor
     * {@code x} at {@code coords} by central differences in the backend's own precision: each
     * coordinate is moved by ±{@link Tolerances#fdStep} (as stored after rounding), the objective
     * (which runs the backend's forward) is evaluated, and {@code x} is restored. Where both
     * moves round back to the same stored value (bf16 spacing is 0.25 near 50, wider than twice
     * {@code fdStep = 0.1}), the step is doubled until they do not.
     */
    private void assertBackendGradient(String what, Tensor x, double[] analytic, int[] coords,
                                       DoubleSupplier objective) {
        Tolerances tol = tol();
        float[] host = x.read();
        double[] fd = new double[coords.length];
        for (int k = 0; k < coords.length; k++) {
            int i = coords[k];
            float x0 = host[i];
            double h = tol.fdStep();
            double xPlus, xMinus;
            do {
                host[i] = (float) (x0 + h);
                x.write(host);
                xPlus = x.read()[i];
                host[i] = (float) (x0 - h);
                x.write(host);
                xMinus = x.read()[i];
                h *= 2;
            } while (xPlus == xMinus);
            host[i] = (float) xPlus;
            x.write(host);
            double plus = objective.getAsDouble();
            host[i] = (float) xMinus;
            x.write(host);
            double minus = objective.getAsDouble();
            host[i] = x0;
            x.write(host);
            fd[k] = (plus - minus) / (xPlus - xMinus);
        }
        assertFiniteDifferencesAgree(what + " (backend, central differences)", fd, analytic, coords, tol.fdRtol());
    }

    // =====================================================================================
    // Guarded tensors
    // =====================================================================================

    /** A tensor of {@link #floatType()} holding {@code values} (rounded to that type). */
    protected Tensor floats(float[] values) {
        return guarded(floatType(), values, null);
    }

    /** An FP32 tensor holding {@code values}. */
    protected Tensor fp32(float[] values) {
        return guarded(DType.FP32, values, null);
    }

    /** A tensor of {@link #statisticsType()} holding {@code values}. */
    protected Tensor stats(float[] values) {
        return guarded(statisticsType(), values, null);
    }

    /** An INT32 tensor holding {@code values}. */
    protected Tensor ints(int[] values) {
        return guarded(DType.INT32, null, values);
    }

    private Tensor guarded(DType dtype, float[] f, int[] ints) {
        int n = f != null ? f.length : ints.length;
        long g = guardElements();
        Buffer parent = backend.allocate(dtype, g + n + g);
        Tensor t = new Tensor(parent, parent.slice(g, n), dtype, n);
        tensors.add(t);
        Random rnd = new Random(n * 31L + dtype.ordinal());
        if (dtype == DType.INT32) {
            int[] all = new int[(int) (g + n + g)];
            Arrays.fill(all, -777_777); // an invalid token id: reading it by mistake fails loudly
            backend.upload(parent, MemorySegment.ofArray(all));
            t.write(ints);
            t.guardInts = new int[all.length];
            backend.download(parent, MemorySegment.ofArray(t.guardInts));
        } else {
            float[] all = gaussian(rnd, (int) (g + n + g), 100);
            backend.upload(parent, Host.segment(all, dtype));
            t.write(f);
            t.guardFloats = Host.download(backend, parent);
        }
        return t;
    }

    /**
     * A slice of a larger buffer whose elements outside the slice ("guards") must not change.
     * Host values are always float (or int); BF16 is converted on the way.
     */
    protected final class Tensor {
        final Buffer parent;
        final Buffer buf;
        final DType dtype;
        final int length;
        float[] guardFloats;
        int[] guardInts;

        Tensor(Buffer parent, Buffer buf, DType dtype, int length) {
            this.parent = parent;
            this.buf = buf;
            this.dtype = dtype;
            this.length = length;
        }

        /** The tensor's values as the backend holds them. */
        public float[] read() {
            return Host.download(backend, buf);
        }

        /** {@link #read()} widened to double: what the reference computes from. */
        public double[] values() {
            return toDouble(read());
        }

        public int[] readInts() {
            int[] host = new int[length];
            backend.download(buf, MemorySegment.ofArray(host));
            return host;
        }

        public void write(float[] values) {
            backend.upload(buf, Host.segment(values, dtype));
        }

        public void write(int[] values) {
            backend.upload(buf, MemorySegment.ofArray(values));
        }

        void assertGuardsIntact() {
            int g = (int) guardElements();
            if (dtype == DType.INT32) {
                int[] now = new int[guardInts.length];
                backend.download(parent, MemorySegment.ofArray(now));
                for (int i = 0; i < now.length; i++) {
                    if ((i < g || i >= g + length) && now[i] != guardInts[i]) {
                        throw new AssertionError("INT32 tensor of " + length + " elements: guard element " + (i - g)
                                + " relative to the slice was overwritten");
                    }
                }
            } else {
                float[] now = Host.download(backend, parent);
                for (int i = 0; i < now.length; i++) {
                    if ((i < g || i >= g + length)
                            && Float.floatToRawIntBits(now[i]) != Float.floatToRawIntBits(guardFloats[i])) {
                        throw new AssertionError(dtype + " tensor of " + length + " elements: guard element "
                                + (i - g) + " relative to the slice was overwritten (" + guardFloats[i] + " -> "
                                + now[i] + ")");
                    }
                }
            }
        }
    }

    /** Host-side conversions between float arrays and buffer bytes of FP32 or BF16. */
    static final class Host {
        private Host() {
        }

        /** {@code values} as the bytes of a buffer of {@code dtype} (BF16: round to nearest even). */
        static MemorySegment segment(float[] values, DType dtype) {
            return switch (dtype) {
                case FP32 -> MemorySegment.ofArray(values.clone());
                case BF16 -> {
                    short[] s = new short[values.length];
                    for (int i = 0; i < values.length; i++) {
                        s[i] = toBf16(values[i]);
                    }
                    yield MemorySegment.ofArray(s);
                }
                case INT32 -> throw new IllegalArgumentException("not a float type");
            };
        }

        static float[] download(Backend backend, Buffer b) {
            int n = (int) b.length();
            float[] out = new float[n];
            switch (b.dtype()) {
                case FP32 -> backend.download(b, MemorySegment.ofArray(out));
                case BF16 -> {
                    short[] s = new short[n];
                    backend.download(b, MemorySegment.ofArray(s));
                    for (int i = 0; i < n; i++) {
                        out[i] = Float.intBitsToFloat((s[i] & 0xffff) << 16);
                    }
                }
                case INT32 -> throw new IllegalArgumentException("not a float type");
            }
            return out;
        }

        static short toBf16(float f) {
            int bits = Float.floatToRawIntBits(f);
            if (Float.isNaN(f)) {
                return (short) ((bits >>> 16) | 0x40);
            }
            int rounding = 0x7fff + ((bits >>> 16) & 1);
            return (short) ((bits + rounding) >>> 16);
        }

        /** {@code values} as a buffer of {@code dtype} would hold them. */
        static float[] round(float[] values, DType dtype) {
            if (dtype == DType.FP32) {
                return values.clone();
            }
            float[] r = new float[values.length];
            for (int i = 0; i < r.length; i++) {
                r[i] = Float.intBitsToFloat((toBf16(values[i]) & 0xffff) << 16);
            }
            return r;
        }

        static float[] toFloat(double[] x) {
            float[] f = new float[x.length];
            for (int i = 0; i < x.length; i++) {
                f[i] = (float) x[i];
            }
            return f;
        }
    }
}
