package dev.anvil.bench.blas;

import dev.anvil.bench.harness.RandomBuffers;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Random;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * OpenBLAS's {@code cblas_sgemm} and Anvil's CPU matmul in one process, in alternating windows
 * ({@link AlternatingTimer}): the paired mode of {@code bench/openblas/compare_matmul.py}, for
 * differences of a few percent on a machine whose speed drifts by more than that between two runs.
 * Both sides do a layer's three products with the layer's β, as the script's other mode does
 * (forward written, dinp and dweight added into), on their own operands (OpenBLAS's off the heap).
 * Prints one line per product: shape, product, then OpenBLAS's and Anvil's GFLOP/s of the fastest
 * and of the median call.
 *
 * <pre>PairedSgemm LIBOPENBLAS THREADS SECONDS ROUNDS SHAPE[,SHAPE...]</pre>
 * OpenBLAS takes its thread count from {@code OPENBLAS_NUM_THREADS}, which the script sets.
 */
public final class PairedSgemm {

    private static final int ROW_MAJOR = 101;
    private static final int PLAIN = 111;
    private static final int TRANSPOSED = 112;
    private static final String[] PRODUCTS = {"forward", "dinp", "dweight"};

    private final MethodHandle sgemm;
    private final Backend backend;
    private final Arena arena = Arena.ofConfined();

    private PairedSgemm(Path library, int threads) {
        SymbolLookup blas = SymbolLookup.libraryLookup(library, Arena.global());
        MemorySegment symbol = blas.find("cblas_sgemm")
                .orElseThrow(() -> new IllegalArgumentException(library + " has no cblas_sgemm: is it OpenBLAS?"));
        sgemm = Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS,
                JAVA_INT));
        backend = new CpuBackend(threads);
    }

    public static void main(String[] args) {
        if (args.length != 5) {
            System.err.println("usage: PairedSgemm LIBOPENBLAS THREADS SECONDS ROUNDS SHAPE[,SHAPE...]");
            System.exit(2);
        }
        PairedSgemm paired = new PairedSgemm(Path.of(args[0]), Integer.parseInt(args[1]));
        double seconds = Double.parseDouble(args[2]);
        int rounds = Integer.parseInt(args[3]);
        try {
            for (String shape : args[4].split(",")) {
                paired.compare(shape.strip(), seconds, rounds);
            }
        } finally {
            paired.backend.close();
            paired.arena.close();
        }
    }

    /** Times the three products of one {@code n x c x oc} shape, {@code seconds} per product and side. */
    private void compare(String shape, double seconds, int rounds) {
        String[] dims = shape.split("x");
        if (dims.length != 3) {
            throw new IllegalArgumentException("a shape is n x c x oc, like 1024x384x1152; got '" + shape + "'");
        }
        int n = Integer.parseInt(dims[0]), c = Integer.parseInt(dims[1]), oc = Integer.parseInt(dims[2]);
        Random random = new Random(1);
        Buffer inp = RandomBuffers.uniform(backend, random, (long) n * c);
        Buffer weight = RandomBuffers.uniform(backend, random, (long) oc * c);
        Buffer dout = RandomBuffers.uniform(backend, random, (long) n * oc);
        Buffer out = backend.allocate(DType.FP32, (long) n * oc);
        Buffer dinp = backend.allocate(DType.FP32, (long) n * c);
        Buffer dweight = backend.allocate(DType.FP32, (long) oc * c);
        MemorySegment x = floats(random, (long) n * c), w = floats(random, (long) oc * c);
        MemorySegment dy = floats(random, (long) n * oc), y = floats(null, (long) n * oc);
        MemorySegment dx = floats(null, (long) n * c), dw = floats(null, (long) oc * c);
        Runnable[] anvil = {
            () -> backend.matmulForward(out, inp, weight, null, n, c, oc),
            () -> backend.matmulBackward(dinp, null, null, dout, inp, weight, n, c, oc),
            () -> backend.matmulBackward(null, dweight, null, dout, inp, weight, n, c, oc),
        };
        Runnable[] blas = {
            // y[n, oc] = x · wᵀ
            () -> sgemm(PLAIN, TRANSPOSED, n, oc, c, x, c, w, c, 0f, y, oc),
            // dx[n, c] += dy · w
            () -> sgemm(PLAIN, PLAIN, n, c, oc, dy, oc, w, c, 1f, dx, c),
            // dw[oc, c] += dyᵀ · x
            () -> sgemm(TRANSPOSED, PLAIN, oc, c, n, dy, oc, x, c, 1f, dw, c),
        };
        double gflop = 2.0 * n * c * oc / 1e9;
        AlternatingTimer timer = new AlternatingTimer(System::nanoTime);
        for (int p = 0; p < PRODUCTS.length; p++) {
            for (int i = 0; i < 3; i++) {
                blas[p].run();
                anvil[p].run();
            }
            AlternatingTimer.Calls[] calls = timer.time(blas[p], anvil[p], rounds, (long) (seconds * 1e9 / rounds));
            System.out.printf(Locale.ROOT, "%s %s %.2f %.2f %.2f %.2f%n", shape, PRODUCTS[p],
                    gflop / (calls[0].fastest() * 1e-9), gflop / (calls[0].median() * 1e-9),
                    gflop / (calls[1].fastest() * 1e-9), gflop / (calls[1].median() * 1e-9));
            System.out.flush();
        }
        for (Buffer b : new Buffer[] {inp, weight, dout, out, dinp, dweight}) {
            b.close();
        }
    }

    private MemorySegment floats(Random random, long count) {
        MemorySegment s = arena.allocate(JAVA_FLOAT, count);
        for (long i = 0; random != null && i < count; i++) {
            s.setAtIndex(JAVA_FLOAT, i, random.nextFloat() - 0.5f);
        }
        return s;
    }

    private void sgemm(int transA, int transB, int m, int n, int k, MemorySegment a, int lda, MemorySegment b,
                       int ldb, float beta, MemorySegment c, int ldc) {
        try {
            sgemm.invokeExact(ROW_MAJOR, transA, transB, m, n, k, 1f, a, lda, b, ldb, beta, c, ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }
}
