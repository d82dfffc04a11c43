package dev.anvil.bench;

import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.kernels.cpu.CpuBackend;
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
 * Forward + backward time of a preset on the CPU backend at B=4, T=64 (random tokens).
 * Tokens per second = 256 / (time per op).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx12g"})
@Warmup(iterations = 2)
@Measurement(iterations = 3)
public class ModelBenchmark {

    static final int B = 4;
    static final int T = 64;

    @Param({"tiny", "gpt2-124m"})
    public String preset;

    private CpuBackend backend;
    private GptModel model;
    private int[] inputs;
    private int[] targets;

    @Setup(Level.Trial)
    public void setUp() {
        GptConfig config = GptConfig.preset(preset);
        backend = new CpuBackend();
        model = new GptModel(backend, config);
        model.initialize(1);
        Random random = new Random(2);
        inputs = random.ints(B * T, 0, config.vocabSize()).toArray();
        targets = random.ints(B * T, 0, config.vocabSize()).toArray();
    }

    @Benchmark
    public float forwardBackward() {
        model.zeroGradients();
        float loss = model.forward(inputs, targets, B, T);
        model.backward();
        return loss;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        model.close();
        backend.close();
    }
}
