package dev.anvil.kernels.cpu;

import dev.anvil.kernels.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The packed GEMM behind {@link CpuMatmul}, on every micro-kernel, against a float64 triple loop.
 * Shapes are awkward on purpose: sizes of 1, non-multiples of the vector width and tile sizes,
 * more rows than one task packs, more steps than one block, more columns than one shared B block
 * (with A shared across them or packed by each task); every buffer is a slice at an odd offset.
 * The small blocking makes modest shapes cross every kind of block boundary; the machine's own
 * blocking runs too.
 */
class CpuMatmulTest {

    private static final double TOLERANCE = 1e-5;
    private static final int[][] SHAPES = {
            {1, 1, 1}, {7, 33, 130}, {130, 7, 33}, {33, 130, 7}, {1, 7, 33},
            {200, 428, 70}, {70, 33, 428}, {428, 17, 9}, {7, 33, 2100}, {9, 1000, 800},
    };
    private static final String[] KERNELS = {"wide", "vector", "scalar"};
    /**
     * Blocks of 32 steps, 24 rows and 64 columns: with A shared across column blocks and C taken
     * as cache-resident (tiles panel by panel), or neither (tiles row by row).
     */
    private static final GemmBlocking SMALL = new GemmBlocking(32, 24, 64, 1 << 20, 1 << 20);
    private static final GemmBlocking SMALL_UNSHARED = new GemmBlocking(32, 24, 64, 0, 0);

    static Stream<Arguments> kernelsAndShapes() {
        return Arrays.stream(KERNELS).flatMap(kernel -> Stream.of("small", "unshared", "machine")
                .flatMap(blocking -> Arrays.stream(SHAPES).map(s -> Arguments.of(kernel, blocking, s[0], s[1], s[2]))));
    }

    @ParameterizedTest(name = "{0} {1} n={2} c={3} oc={4}")
    @MethodSource("kernelsAndShapes")
    void forwardOverwritesOutWithInputTimesWeightTransposedPlusBias(String kernel, String blocking, int n, int c,
                                                                     int oc) {
        try (WorkerPool pool = new WorkerPool(2)) {
            CpuMatmul matmul = matmul(pool, kernel, blocking);
            Random rnd = new Random(n * 31L + c * 7L + oc);
            CpuBuffer inp = random(rnd, n * c), weight = random(rnd, oc * c), bias = random(rnd, oc);
            for (CpuBuffer b : new CpuBuffer[] {bias, null}) {
                CpuBuffer out = random(rnd, n * oc);
                Arrays.fill(out.f, out.offset, out.offset + n * oc, Float.NaN);
                matmul.forward(out, inp, weight, b, n, c, oc);

                double[] want = new double[n * oc], scale = new double[n * oc];
                for (int r = 0; r < n; r++) {
                    for (int j = 0; j < oc; j++) {
                        double bj = b == null ? 0 : get(b, j);
                        want[r * oc + j] = bj;
                        scale[r * oc + j] = Math.abs(bj);
                        for (int p = 0; p < c; p++) {
                            double prod = get(inp, r * c + p) * get(weight, j * c + p);
                            want[r * oc + j] += prod;
                            scale[r * oc + j] += Math.abs(prod);
                        }
                    }
                }
                assertClose(want, scale, out, "out");
            }
        }
    }

    @ParameterizedTest(name = "{0} {1} n={2} c={3} oc={4}")
    @MethodSource("kernelsAndShapes")
    void backwardAccumulatesAllThreeGradients(String kernel, String blocking, int n, int c, int oc) {
        try (WorkerPool pool = new WorkerPool(2)) {
            CpuMatmul matmul = matmul(pool, kernel, blocking);
            Random rnd = new Random(n * 17L + c * 5L + oc);
            CpuBuffer dout = random(rnd, n * oc), inp = random(rnd, n * c), weight = random(rnd, oc * c);
            CpuBuffer dinp = random(rnd, n * c), dweight = random(rnd, oc * c), dbias = random(rnd, oc);
            double[] wantDinp = new double[n * c], scaleDinp = new double[n * c];
            double[] wantDw = new double[oc * c], scaleDw = new double[oc * c];
            double[] wantDb = new double[oc], scaleDb = new double[oc];
            for (int i = 0; i < n * c; i++) {
                wantDinp[i] = get(dinp, i);
                scaleDinp[i] = Math.abs(wantDinp[i]);
            }
            for (int i = 0; i < oc * c; i++) {
                wantDw[i] = get(dweight, i);
                scaleDw[i] = Math.abs(wantDw[i]);
            }
            for (int j = 0; j < oc; j++) {
                wantDb[j] = get(dbias, j);
                scaleDb[j] = Math.abs(wantDb[j]);
            }
            for (int r = 0; r < n; r++) {
                for (int j = 0; j < oc; j++) {
                    double g = get(dout, r * oc + j);
                    wantDb[j] += g;
                    scaleDb[j] += Math.abs(g);
                    for (int p = 0; p < c; p++) {
                        double toInp = g * get(weight, j * c + p), toWeight = g * get(inp, r * c + p);
                        wantDinp[r * c + p] += toInp;
                        scaleDinp[r * c + p] += Math.abs(toInp);
                        wantDw[j * c + p] += toWeight;
                        scaleDw[j * c + p] += Math.abs(toWeight);
                    }
                }
            }

            matmul.backward(dinp, dweight, dbias, dout, inp, weight, n, c, oc);

            assertClose(wantDinp, scaleDinp, dinp, "dinp");
            assertClose(wantDw, scaleDw, dweight, "dweight");
            assertClose(wantDb, scaleDb, dbias, "dbias");
        }
    }

    /**
     * Each element is one chain of fused multiply-adds in step order, so neither the thread count
     * nor the blocking nor the kernel may change a single bit.
     */
    @Test
    void resultsAreBitIdenticalAcrossThreadCountsBlockingsAndKernels() {
        // Rows of out more than a page apart: the unshared blocking's forward runs its tiles row by row.
        int n = 150, c = 500, oc = 1030;
        Random rnd = new Random(42);
        CpuBuffer inp = random(rnd, n * c), weight = random(rnd, oc * c), dout = random(rnd, n * oc);
        float[][] first = null;
        String firstRun = null;
        for (String kernel : KERNELS) {
            for (String blocking : new String[] {"machine", "small", "unshared"}) {
                for (int threads : new int[] {2, 2, 1, 3}) {
                    try (WorkerPool pool = new WorkerPool(threads)) {
                        CpuMatmul matmul = matmul(pool, kernel, blocking);
                        CpuBuffer out = CpuBuffer.allocate(DType.FP32, n * oc);
                        CpuBuffer dinp = CpuBuffer.allocate(DType.FP32, n * c);
                        CpuBuffer dweight = CpuBuffer.allocate(DType.FP32, oc * c);
                        matmul.forward(out, inp, weight, null, n, c, oc);
                        matmul.backward(dinp, dweight, null, dout, inp, weight, n, c, oc);
                        float[][] run = {out.f, dinp.f, dweight.f};
                        String name = kernel + " kernel, " + blocking + " blocking, " + threads + " threads";
                        if (first == null) {
                            first = run;
                            firstRun = name;
                        } else {
                            for (int i = 0; i < run.length; i++) {
                                assertArrayEquals(first[i], run[i], "result " + i + " of " + name + " vs " + firstRun);
                            }
                        }
                    }
                }
            }
        }
    }

    private static CpuMatmul matmul(WorkerPool pool, String kernel, String blocking) {
        assumeTrue(kernel.equals("scalar") || Simd.available(), "jdk.incubator.vector is not available");
        MicroKernel k = switch (kernel) {
            case "wide" -> new WideVectorKernel();
            case "vector" -> new VectorMicroKernel();
            default -> new ScalarMicroKernel();
        };
        GemmBlocking b = switch (blocking) {
            case "small" -> SMALL;
            case "unshared" -> SMALL_UNSHARED;
            default -> GemmBlocking.of(CacheSizes.detected(), k.mr(), k.nr());
        };
        return new CpuMatmul(pool, new Gemm(pool, k, b));
    }

    /** {@code length} random values in a slice at an odd offset of a larger buffer. */
    private static CpuBuffer random(Random rnd, int length) {
        CpuBuffer whole = CpuBuffer.allocate(DType.FP32, length + 8);
        for (int i = 0; i < whole.f.length; i++) {
            whole.f[i] = rnd.nextFloat() * 2 - 1;
        }
        return whole.slice(3, length);
    }

    private static double get(CpuBuffer b, int i) {
        return b.f[b.offset + i];
    }

    private static void assertClose(double[] want, double[] scale, CpuBuffer got, String name) {
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs(get(got, i) - want[i]);
            int at = i;
            assertTrue(err <= TOLERANCE * scale[i] + 1e-30,
                    () -> name + "[" + at + "] = " + get(got, at) + ", want " + want[at] + " (scale " + scale[at] + ")");
        }
    }
}
