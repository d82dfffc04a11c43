package dev.anvil.bench;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.bench.harness.RandomBuffers;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.cpu.CpuBackend;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * GFLOP/s of a backend's matmul (the CPU on all cores by default; {@code -p backendName=cpu,cuda} on a
 * GPU machine), for the linear layers of the CPU speed bar's model (C=384, V=50304, 1024
 * positions: QKV, attention projection, MLP up and down, LM head) and of GPT-2 small (C=768).
 * {@code bench/openblas/compare_matmul.py} runs it beside OpenBLAS and prints the ratios.
 *
 * <p>Each product {@code n×c×oc} is {@code 2·n·c·oc} FLOP. The secondary result {@code gflop} is a
 * counter of GFLOP done, which JMH reports per second: read it as GFLOP/s. {@code forward} does one
 * product, {@code backward} two ({@code dinp} and {@code dweight}), {@code backwardInput} only
 * {@code dinp} (a frozen weight) and {@code backwardWeight} only {@code dweight}. With
 * {@code -p bias=false} the layer has no bias, so each call is its GEMM alone.
 *
 * <pre>java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar MatmulBenchmark</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
public class MatmulBenchmark {

    /** {@code n x c x oc}: rows, input channels, output channels. */
    @Param({"1024x384x1152", "1024x384x384", "1024x384x1536", "1024x1536x384", "1024x384x50304",
            "1024x768x2304", "1024x768x3072", "1024x3072x768"})
    public String shape;

    /** {@code cpu}, or {@code cuda} on a GPU machine ({@code -p backend=cpu,cuda}). */
    @Param({"cpu"})
    public String backendName;

    /** Whether the layer has a bias ({@code false}: the GEMMs alone, as a BLAS comparison needs). */
    @Param({"true"})
    public boolean bias;

    /** CPU threads, {@code 0} for every core (a JVM told {@code -XX:ActiveProcessorCount} runs the kernels far slower). */
    @Param({"0"})
    public int threads;

    private Backend backend;
    private Buffer inp, weight, biasValues, out, dout, dinp, dweight, dbias;
    private int n, c, oc;
    private double gflopPerProduct;

    /** GFLOP done; JMH reports it per second. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops {
        public double gflop;

        @Setup(Level.Iteration)
        public void reset() {
            gflop = 0;
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        String[] dims = shape.split("x");
        n = Integer.parseInt(dims[0]);
        c = Integer.parseInt(dims[1]);
        oc = Integer.parseInt(dims[2]);
        gflopPerProduct = 2.0 * n * c * oc / 1e9;
        backend = backendName.equals("cpu") && threads > 0 ? new CpuBackend(threads) : Backends.open(backendName);
        Random rnd = new Random(1);
        inp = random(rnd, (long) n * c);
        weight = random(rnd, (long) oc * c);
        biasValues = bias ? random(rnd, oc) : null;
        dout = random(rnd, (long) n * oc);
        out = backend.allocate(DType.FP32, (long) n * oc);
        dinp = backend.allocate(DType.FP32, (long) n * c);
        dweight = backend.allocate(DType.FP32, (long) oc * c);
        dbias = bias ? backend.allocate(DType.FP32, oc) : null;
    }

    private Buffer random(Random rnd, long length) {
        return RandomBuffers.uniform(backend, rnd, length);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
    }

    @Benchmark
    public Buffer forward(Flops flops) {
        backend.matmulForward(out, inp, weight, biasValues, n, c, oc);
        backend.synchronize();
        flops.gflop += gflopPerProduct;
        return out;
    }

    @Benchmark
    public Buffer backward(Flops flops) {
        backend.matmulBackward(dinp, dweight, dbias, dout, inp, weight, n, c, oc);
        backend.synchronize();
        flops.gflop += 2 * gflopPerProduct;
        return dweight;
    }

    @Benchmark
    public Buffer backwardInput(Flops flops) {
        backend.matmulBackward(dinp, null, dbias, dout, inp, weight, n, c, oc);
        backend.synchronize();
        flops.gflop += gflopPerProduct;
        return dinp;
    }

    @Benchmark
    public Buffer backwardWeight(Flops flops) {
        backend.matmulBackward(null, dweight, dbias, dout, inp, weight, n, c, oc);
        backend.synchronize();
        flops.gflop += gflopPerProduct;
        return dweight;
    }
}
