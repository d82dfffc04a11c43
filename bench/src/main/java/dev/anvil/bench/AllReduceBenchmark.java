package dev.anvil.bench;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.LocalCluster;
import dev.anvil.collective.ReduceOp;
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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * fp32 sum all-reduce of the collective module's ring over loopback sockets: {@code ranks}
 * communicators in one process ({@link LocalCluster}), each reducing a buffer of {@code mib} MiB.
 *
 * <p>The secondary result {@code gigabytes} counts GB of buffer reduced, which JMH reports per
 * second: the algorithm bandwidth (algbw). The bus bandwidth NCCL reports is
 * {@code algbw · 2(R-1)/R}. All ranks share this machine's cores, so this measures the
 * protocol's CPU cost more than a network.
 *
 * <pre>java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar AllReduceBenchmark</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class AllReduceBenchmark {

    @Param({"2", "4"})
    public int ranks;

    /** Buffer size per rank: a gradient bucket (1 MiB) and a small model's gradients (64 MiB). */
    @Param({"1", "64"})
    public int mib;

    private LocalCluster cluster;
    private Arena arena;
    private List<MemorySegment> buffers;
    private double gigabytesPerOp;

    /** GB all-reduced; JMH reports it per second. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Bytes {
        public double gigabytes;

        @Setup(Level.Iteration)
        public void reset() {
            gigabytes = 0;
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        cluster = LocalCluster.start(ranks);
        // Shared: the network threads read and write the buffers.
        arena = Arena.ofShared();
        long bytes = (long) mib << 20;
        buffers = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            buffers.add(arena.allocate(bytes, 64)); // zero-filled: sums stay finite however often they run
        }
        gigabytesPerOp = bytes / 1e9;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        cluster.close();
        arena.close();
    }

    @Benchmark
    public void allReduce(Bytes counter) {
        List<CompletableFuture<Void>> pending = new ArrayList<>(ranks);
        for (int r = 0; r < ranks; r++) {
            pending.add(cluster.rank(r).allReduceAsync(buffers.get(r), ElementType.FLOAT32, ReduceOp.SUM));
        }
        pending.forEach(Communicator::await);
        counter.gigabytes += gigabytesPerOp;
    }
}
