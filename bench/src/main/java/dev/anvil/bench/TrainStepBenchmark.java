package dev.anvil.bench;

import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.AdamWConfig;
import dev.anvil.kernels.cpu.CpuBackend;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * A full fp32 training step (forward, backward, gradient clipping, AdamW) of the CPU speed bar's
 * model: L=6, C=384, nh=6, V=50304, B=4, T=256. Tokens per second = 1024 × (ops per second); the
 * bar is 350 tokens/s on 2 cores, what PyTorch 1.13 with OpenBLAS reaches there.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx8g"})
@Warmup(iterations = 2, time = 10)
@Measurement(iterations = 3, time = 10)
public class TrainStepBenchmark {

    static final int B = 4;
    static final int T = 256;

    private CpuBackend backend;
    private GptModel model;
    private AdamW adamw;
    private int[] inputs;
    private int[] targets;

    @Setup(Level.Trial)
    public void setUp() {
        GptConfig config = new GptConfig(T, 50304, 50304, 6, 6, 384);
        backend = new CpuBackend();
        model = new GptModel(backend, config);
        model.initialize(1);
        adamw = new AdamW(backend, model.layout(), new AdamWConfig(0.9f, 0.95f, 1e-8f, 0.1f, 1f));
        Random random = new Random(2);
        inputs = random.ints(B * T, 0, config.vocabSize()).toArray();
        targets = random.ints(B * T, 0, config.vocabSize()).toArray();
    }

    @Benchmark
    public float trainStep() {
        model.zeroGradients();
        float loss = model.forward(inputs, targets, B, T);
        model.backward();
        float norm = adamw.gradientNorm(model.gradients());
        adamw.step(model.parameters(), model.gradients(), 3e-4f, adamw.clipScale(norm));
        return loss;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        adamw.close();
        model.close();
        backend.close();
    }
}
