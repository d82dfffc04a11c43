package dev.anvil.bench;

import dev.anvil.bench.harness.RandomBuffers;
import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.Backend;
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

import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Time of each non-matmul op, forward and backward (CPU by default; {@code -p backendName=cpu,cuda}
 * on a GPU machine), at GPT-2 small's shape with B=4, T=256
 * ({@code n = 1024} positions, {@code C = 768}, 12 heads, vocabulary 50,257 padded to 50,304), on
 * all cores. AdamW updates one transformer block's 7,087,872 parameters. Matmuls are
 * {@link MatmulBenchmark}'s.
 *
 * <pre>java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar ModelOpsBenchmark</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g"})
public class ModelOpsBenchmark {

    static final int B = 4, T = 256, C = 768, NH = 12, V = 50257, VP = 50304;
    static final int N = B * T;
    /** Parameters of one GPT-2 small block: 12·C² + 13·C. */
    static final int BLOCK_PARAMS = 12 * C * C + 13 * C;

    /** {@code cpu}, or {@code cuda} on a GPU machine ({@code -p backend=cpu,cuda}). */
    @Param({"cpu"})
    public String backendName;

    private Backend backend;
    private final Random random = new Random(1);
    private Buffer x, out, dout, dx, mean, rstd, weight, bias, dweight, dbias;
    private Buffer qkv, atty, lse, datty, dqkv;
    private Buffer fch, fchGelu, dfchGelu, dfch;
    private Buffer logits, losses, targets;
    private Buffer params, grads, m, v;
    private AdamWStep adamwStep;

    @Setup(Level.Trial)
    public void setUp() {
        backend = Backends.open(backendName);
        x = random((long) N * C);
        out = zeros((long) N * C);
        dout = random((long) N * C);
        dx = zeros((long) N * C);
        mean = zeros(N);
        rstd = zeros(N);
        weight = random(C);
        bias = random(C);
        dweight = zeros(C);
        dbias = zeros(C);
        backend.layerNormForward(out, mean, rstd, x, weight, bias, N, C);

        qkv = random(3L * N * C);
        atty = zeros((long) N * C);
        lse = zeros((long) B * NH * T);
        datty = random((long) N * C);
        dqkv = zeros(3L * N * C);
        backend.attentionForward(atty, lse, qkv, B, T, C, NH);

        fch = random(4L * N * C);
        fchGelu = zeros(4L * N * C);
        dfchGelu = random(4L * N * C);
        dfch = zeros(4L * N * C);

        logits = random((long) N * VP);
        losses = zeros(N);
        targets = backend.allocate(DType.INT32, N);
        backend.upload(targets, MemorySegment.ofArray(random.ints(N, 0, V).toArray()));

        params = random(BLOCK_PARAMS);
        grads = random(BLOCK_PARAMS);
        m = zeros(BLOCK_PARAMS);
        v = zeros(BLOCK_PARAMS);
        adamwStep = new AdamWStep(3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1f);
    }

    private Buffer random(long length) {
        return RandomBuffers.uniform(backend, random, length);
    }

    private Buffer zeros(long length) {
        return backend.allocate(DType.FP32, length);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
    }

    @Benchmark
    public Buffer layerNormForward() {
        backend.layerNormForward(out, mean, rstd, x, weight, bias, N, C);
        backend.synchronize();
        return out;
    }

    @Benchmark
    public Buffer layerNormBackward() {
        backend.layerNormBackward(dx, dweight, dbias, dout, x, weight, mean, rstd, N, C);
        backend.synchronize();
        return dx;
    }

    @Benchmark
    public Buffer attentionForward() {
        backend.attentionForward(atty, lse, qkv, B, T, C, NH);
        backend.synchronize();
        return atty;
    }

    @Benchmark
    public Buffer attentionBackward() {
        backend.attentionBackward(dqkv, datty, qkv, atty, lse, B, T, C, NH);
        backend.synchronize();
        return dqkv;
    }

    @Benchmark
    public Buffer geluForward() {
        backend.geluForward(fchGelu, fch, 4 * N * C);
        backend.synchronize();
        return fchGelu;
    }

    @Benchmark
    public Buffer geluBackward() {
        backend.geluBackward(dfch, fch, dfchGelu, 4 * N * C);
        backend.synchronize();
        return dfch;
    }

    /** Losses only, as in evaluation. */
    @Benchmark
    public Buffer crossEntropyForward() {
        backend.softmaxCrossEntropy(losses, logits, targets, N, V, VP, 0f);
        backend.synchronize();
        return losses;
    }

    /**
     * Losses and the logits' gradient, as in training. The gradient overwrites the logits, so later
     * calls see smaller values; the work per call is the same.
     */
    @Benchmark
    public Buffer crossEntropyForwardBackward() {
        backend.softmaxCrossEntropy(losses, logits, targets, N, V, VP, 1f / N);
        backend.synchronize();
        return logits;
    }

    @Benchmark
    public Buffer adamw() {
        backend.adamw(params, null, grads, m, v, adamwStep);
        backend.synchronize();
        return params;
    }
}
