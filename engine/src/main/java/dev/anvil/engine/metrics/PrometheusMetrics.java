package dev.anvil.engine.metrics;

import dev.anvil.engine.train.StepMetrics;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import java.util.function.ToDoubleFunction;

/**
 * Serves a training run's metrics for Prometheus at {@code http://HOST:PORT/metrics}.
 *
 * <p>Feed it every step ({@link #accept}, e.g. {@code trainer.onStep(metrics)}); it exports the last
 * step's {@code anvil_train_loss}, {@code anvil_validation_loss} (once evaluated),
 * {@code anvil_learning_rate}, {@code anvil_gradient_norm}, {@code anvil_train_step},
 * {@code anvil_tokens_per_second} and {@code anvil_step_duration_seconds}, plus JVM memory
 * ({@code anvil_jvm_memory_used_bytes{area}}, {@code anvil_jvm_buffer_pool_used_bytes{pool}}).
 * Hooks for what the trainer does not report yet: {@link #stepPhase} (forward, backward, ...),
 * {@link #allReduced} (all-reduce traffic) and {@link #deviceMemory} (GPU memory).
 *
 * <p>Training figures appear only after the first step, so a scrape never sees a made-up zero.
 * Thread-safe: the trainer writes while the HTTP server's thread reads.
 */
public final class PrometheusMetrics implements Consumer<StepMetrics>, AutoCloseable {

    private final HTTPServer server;
    private final Gauge phaseSeconds;
    private final Counter allReduceBytes;
    private final Gauge allReduceBytesPerSecond;
    private volatile StepMetrics last;
    private volatile Double lastValLoss;
    private volatile double stepSeconds = Double.NaN;
    private volatile LongSupplier deviceMemoryUsed;

    private PrometheusMetrics(PrometheusRegistry registry, int port) throws IOException {
        stepGauge(registry, "anvil_train_loss", "Mean training loss of the last step", StepMetrics::loss);
        stepGauge(registry, "anvil_learning_rate", "Learning rate of the last step", StepMetrics::lr);
        stepGauge(registry, "anvil_gradient_norm", "Global gradient L2 norm of the last step, before clipping",
                StepMetrics::gradNorm);
        stepGauge(registry, "anvil_train_step", "Optimizer steps completed", StepMetrics::step);
        stepGauge(registry, "anvil_tokens_per_second", "Tokens per second of the last step, all ranks together",
                StepMetrics::tokensPerS);
        GaugeWithCallback.builder().name("anvil_validation_loss").help("Validation loss of the last evaluation")
                .callback(cb -> {
                    Double v = lastValLoss;
                    if (v != null) {
                        cb.call(v);
                    }
                }).register(registry);
        GaugeWithCallback.builder().name("anvil_step_duration_seconds")
                .help("Wall time between the last two steps' reports (an evaluation in between included)")
                .callback(cb -> {
                    if (!Double.isNaN(stepSeconds)) {
                        cb.call(stepSeconds);
                    }
                }).register(registry);
        phaseSeconds = Gauge.builder().name("anvil_step_phase_seconds")
                .help("Seconds the last step spent in each phase (data, forward, backward, communication, optimizer)")
                .labelNames("phase").register(registry);
        allReduceBytes = Counter.builder().name("anvil_allreduce_bytes_total")
                .help("Bytes all-reduced by this rank").register(registry);
        allReduceBytesPerSecond = Gauge.builder().name("anvil_allreduce_bytes_per_second")
                .help("Throughput of the last all-reduce (bytes of the buffer over its wall time)").register(registry);
        registerMemory(registry);
        try {
            server = HTTPServer.builder().port(port).registry(registry).buildAndStart();
        } catch (IOException e) {
            throw new IOException("cannot serve Prometheus metrics on port " + port + " (" + e.getMessage()
                    + "); pick a free port, or 0 for any", e);
        }
    }

    /**
     * Starts serving on {@code port} of every interface (Prometheus scrapes from another host);
     * {@code 0} picks a free port, see {@link #port()}.
     *
     * @throws IOException if the port cannot be bound
     */
    public static PrometheusMetrics start(int port) throws IOException {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("metrics port must be in 0..65535, got " + port);
        }
        return new PrometheusMetrics(new PrometheusRegistry(), port);
    }

    /** The port the metrics are served on. */
    public int port() {
        return server.getPort();
    }

    private void stepGauge(PrometheusRegistry registry, String name, String help, ToDoubleFunction<StepMetrics> value) {
        GaugeWithCallback.builder().name(name).help(help).callback(cb -> {
            StepMetrics m = last;
            if (m != null) {
                cb.call(value.applyAsDouble(m));
            }
        }).register(registry);
    }

    private void registerMemory(PrometheusRegistry registry) {
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        GaugeWithCallback.builder().name("anvil_jvm_memory_used_bytes").help("JVM memory in use")
                .labelNames("area").callback(cb -> {
                    cb.call(memory.getHeapMemoryUsage().getUsed(), "heap");
                    cb.call(memory.getNonHeapMemoryUsage().getUsed(), "nonheap");
                }).register(registry);
        GaugeWithCallback.builder().name("anvil_jvm_buffer_pool_used_bytes")
                .help("Off-heap memory of the JVM's buffer pools (direct, mapped)")
                .labelNames("pool").callback(cb -> {
                    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
                        cb.call(pool.getMemoryUsed(), pool.getName());
                    }
                }).register(registry);
        GaugeWithCallback.builder().name("anvil_device_memory_used_bytes")
                .help("Accelerator memory in use, when the backend reports it").callback(cb -> {
                    LongSupplier device = deviceMemoryUsed;
                    if (device != null) {
                        cb.call(device.getAsLong());
                    }
                }).register(registry);
    }

    /** Records a finished step. */
    @Override
    public void accept(StepMetrics metrics) {
        StepMetrics previous = last;
        if (previous != null && metrics.step() == previous.step() + 1) {
            stepSeconds = metrics.elapsedS() - previous.elapsedS();
        }
        if (metrics.valLoss() != null) {
            lastValLoss = metrics.valLoss();
        }
        last = metrics;
    }

    /** Records how long the last step spent in {@code phase}, e.g. {@code "forward"}. */
    public void stepPhase(String phase, double seconds) {
        phaseSeconds.labelValues(Objects.requireNonNull(phase, "phase")).set(seconds);
    }

    /** Records one all-reduce of {@code bytes} that took {@code seconds}. */
    public void allReduced(long bytes, double seconds) {
        allReduceBytes.inc(bytes);
        if (seconds > 0) {
            allReduceBytesPerSecond.set(bytes / seconds);
        }
    }

    /** Reports accelerator memory in use from {@code usedBytes}, read at each scrape. */
    public PrometheusMetrics deviceMemory(LongSupplier usedBytes) {
        this.deviceMemoryUsed = Objects.requireNonNull(usedBytes, "usedBytes");
        return this;
    }

    /** Stops serving. */
    @Override
    public void close() {
        server.close();
    }
}
