package dev.anvil.bench.profile;

import dev.anvil.engine.cli.AnvilSubcommand;
import dev.anvil.engine.cli.BackendOptions;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code anvil bench-attention}: causal attention alone, forward and forward+backward, in TFLOPS
 * by the FlashAttention papers' count ({@code 2·B·T²·C} forward over the lower triangle, 2.5 times
 * that backward), beside which {@code bench/pytorch/bench_attention.py} puts PyTorch's
 * {@code scaled_dot_product_attention} on the same shapes. Timed with the host clock around
 * {@link Backend#synchronize()}, median of the repeats, inputs fresh random values.
 */
@Command(name = "bench-attention", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Causal attention speed, forward and forward+backward, in TFLOPS.")
public final class AttentionBenchCommand implements Callable<Integer>, AnvilSubcommand {

    @Mixin
    BackendOptions compute;

    @Option(names = "--batch-size", defaultValue = "8", description = "B (default: ${DEFAULT-VALUE})")
    int b;

    @Option(names = "--seq-len", defaultValue = "2048", description = "T (default: ${DEFAULT-VALUE})")
    int t;

    @Option(names = "--heads", defaultValue = "16", description = "Heads (default: ${DEFAULT-VALUE})")
    int nh;

    @Option(names = "--head-size", defaultValue = "128", description = "Channels per head (default: ${DEFAULT-VALUE})")
    int hs;

    @Option(names = "--repeats", defaultValue = "10", description = "Timed repeats, after one warmup (default: ${DEFAULT-VALUE})")
    int repeats;

    @Override
    public Integer call() {
        int c = nh * hs;
        long btc = (long) b * t * c;
        DType dtype = compute.dtype();
        try (Backend backend = compute.open()) {
            SplittableRandom random = new SplittableRandom(3);
            try (Buffer qkv = random(backend, dtype, 3 * btc, random); Buffer out = backend.allocate(dtype, btc);
                 Buffer lse = backend.allocate(DType.FP32, (long) b * nh * t);
                 Buffer dout = random(backend, dtype, btc, random); Buffer dqkv = backend.allocate(dtype, 3 * btc)) {
                Runnable forward = () -> backend.attentionForward(out, lse, qkv, b, t, c, nh);
                Runnable both = () -> {
                    forward.run();
                    backend.attentionBackward(dqkv, dout, qkv, out, lse, b, t, c, nh);
                };
                double fwdMs = medianMillis(backend, forward), bothMs = medianMillis(backend, both);
                double fwdFlops = OpCost.attentionForward(b, t, c, nh, dtype.bytes()).flops();
                double bothFlops = fwdFlops + OpCost.attentionBackward(b, t, c, nh, dtype.bytes()).flops();
                System.out.printf(Locale.ROOT, "bench-attention: %s, %s, B=%d T=%d heads=%d head size=%d, causal%n",
                        backend.description(), dtype.toString().toLowerCase(Locale.ROOT), b, t, nh, hs);
                for (String line : lines(fwdMs, fwdFlops, bothMs, bothFlops)) {
                    System.out.println(line);
                }
            }
        }
        return 0;
    }

    /** The result lines, TFLOPS from milliseconds and FLOPs. */
    static List<String> lines(double fwdMs, double fwdFlops, double bothMs, double bothFlops) {
        return List.of(String.format(Locale.ROOT, "forward           %9.3f ms %8.1f TFLOPS", fwdMs, fwdFlops / fwdMs / 1e9),
                String.format(Locale.ROOT, "forward+backward  %9.3f ms %8.1f TFLOPS", bothMs, bothFlops / bothMs / 1e9));
    }

    private double medianMillis(Backend backend, Runnable work) {
        work.run();
        backend.synchronize();
        double[] ms = new double[repeats];
        for (int i = 0; i < repeats; i++) {
            long start = System.nanoTime();
            work.run();
            backend.synchronize();
            ms[i] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(ms);
        return repeats % 2 == 1 ? ms[repeats / 2] : (ms[repeats / 2 - 1] + ms[repeats / 2]) / 2;
    }

    /** A buffer of N(0, 1) values of {@code dtype} (bf16 rounded on upload). */
    private static Buffer random(Backend backend, DType dtype, long n, SplittableRandom random) {
        float[] values = new float[Math.toIntExact(n)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (random.nextDouble() * 2 - 1) * 1.7f;
        }
        Buffer buffer = backend.allocate(dtype, n);
        if (dtype == DType.BF16) {
            short[] bits = new short[values.length];
            for (int i = 0; i < bits.length; i++) {
                bits[i] = dev.anvil.kernels.BFloat16.fromFloat(values[i]);
            }
            backend.upload(buffer, MemorySegment.ofArray(bits));
        } else {
            backend.upload(buffer, MemorySegment.ofArray(values));
        }
        return buffer;
    }
}
