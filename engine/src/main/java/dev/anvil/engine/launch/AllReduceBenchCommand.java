package dev.anvil.engine.launch;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.CommunicatorOptions;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.LocalCluster;
import dev.anvil.collective.NettyCommunicator;
import dev.anvil.collective.ReduceOp;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.engine.cli.CommOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;

/**
 * {@code anvil allreduce-bench}: times the ring all-reduce for sizes from {@code --min-size} to
 * {@code --size} by factors of 4 and prints the bandwidths as nccl-tests defines them: algbw = size /
 * time, busbw = algbw · 2(R−1)/R (what each link carries, comparable across rank counts). Each size
 * is warmed up until the JVM has compiled the hot loops (at least {@code --warmup} iterations and
 * {@code --warmup-seconds}), so the table shows the steady state a training run sees after its first
 * steps.
 *
 * <p>With {@code --world-size R} it runs R ranks as communicators in this one process (threads),
 * over real loopback TCP. Without it, started under torchrun, Slurm or {@code anvil launch} (RANK
 * or SLURM_PROCID set), each process is one rank of the job, and rank 0 prints the table, each
 * time being the mean over the ranks as in nccl-tests.
 */
@Command(name = "allreduce-bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Measure all-reduce time and bandwidth (algbw, busbw as nccl-tests defines them).",
                "Local: anvil allreduce-bench --world-size 4 --size 64MB",
                "Across nodes: one process per rank under torchrun/srun/anvil launch, e.g."
                        + " anvil launch --nproc-per-node 2 -- allreduce-bench"})
public final class AllReduceBenchCommand implements Callable<Integer> {

    @Option(names = "--world-size", paramLabel = "R", description = "Run R ranks in this process; without it, be one rank of a job started by torchrun, srun or anvil launch")
    Integer worldSize;

    @Option(names = "--size", defaultValue = "64MB", description = "Largest buffer, e.g. 4KB, 64MB, 1GB (default: ${DEFAULT-VALUE})")
    String size;

    @Option(names = "--min-size", description = "Smallest buffer; sizes grow by factors of 4 (default: --size / 256)")
    String minSize;

    @Option(names = "--iters", defaultValue = "20", description = "Timed all-reduces per size (default: ${DEFAULT-VALUE})")
    int iters;

    @Option(names = "--warmup", defaultValue = "5", description = "Untimed all-reduces before them, repeated until --warmup-seconds passed (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--warmup-seconds", defaultValue = "1", description = "Least warm-up time per size, for the JIT compiler (default: ${DEFAULT-VALUE})")
    double warmupSeconds;

    @Mixin
    CommOptions comm;

    @Option(names = "--dtype", defaultValue = "fp32", description = "fp32 or bf16 (default: ${DEFAULT-VALUE})")
    String dtype;

    /** The ranks under test, driven from one thread. */
    private interface Ranks extends AutoCloseable {
        int worldSize();

        /** Whether this process prints. */
        boolean leader();

        /** The rank of the first buffer driven here. */
        int firstRank();

        /** One buffer of {@code bytes} per rank driven here. */
        List<MemorySegment> allocate(long bytes);

        /** All-reduces every rank's buffer once, returning when all are done. */
        void allReduce(List<MemorySegment> buffers, ElementType type);

        /** The mean of {@code seconds} over all ranks of the job. */
        double mean(double seconds);

        /** Whether {@code mine} holds on any rank of the job. */
        default boolean any(boolean mine) {
            return mean(mine ? 1 : 0) > 0;
        }

        /** Ends the job normally, so no rank reports the others leaving as lost (see {@code Communicator#finish}). */
        default void finish() {
        }

        @Override
        void close();
    }

    @Override
    public Integer call() {
        ElementType type = switch (dtype) {
            case "fp32" -> ElementType.FLOAT32;
            case "bf16" -> ElementType.BFLOAT16;
            default -> throw new IllegalArgumentException("--dtype must be fp32 or bf16, got '" + dtype + "'");
        };
        long largest = ByteSize.parse(size);
        long smallest = minSize == null ? largest / 256 : ByteSize.parse(minSize);
        if (iters < 1 || warmup < 0 || warmupSeconds < 0) {
            throw new IllegalArgumentException("--iters must be at least 1, --warmup and --warmup-seconds at least 0");
        }
        boolean local = worldSize != null;
        try (Ranks ranks = local ? localRanks() : jobRank(System.getenv())) {
            int r = ranks.worldSize();
            long minimum = (long) type.byteSize() * r;
            if (largest < minimum) {
                throw new IllegalArgumentException("--size " + size + " is smaller than one " + dtype + " element per rank ("
                        + minimum + " bytes for " + r + " ranks)");
            }
            PrintStream out = System.out;
            if (ranks.leader()) {
                out.printf(Locale.ROOT, "anvil allreduce-bench: %d ranks (%s, --transport %s), %s sum, %d iterations"
                        + " after %d warmup, repeated for at least %.1f s%n", r, local ? "in this process"
                        : "one per process", comm.transport(), dtype, iters, warmup, warmup > 0 ? warmupSeconds : 0);
                out.printf(Locale.ROOT, "%10s %12s %11s %13s %13s%n", "size", "elements", "time (ms)", "algbw (GB/s)",
                        "busbw (GB/s)");
            }
            for (long bytes : sizes(largest, Math.max(smallest, minimum), type.byteSize())) {
                List<MemorySegment> buffers = ranks.allocate(bytes);
                check(ranks, buffers, type);
                for (MemorySegment b : buffers) {
                    b.fill((byte) 0); // zeros stay zeros: no overflow to infinity over the iterations
                }
                long warmStart = System.nanoTime();
                while (warmup > 0) {
                    for (int i = 0; i < warmup; i++) {
                        ranks.allReduce(buffers, type);
                    }
                    if (!ranks.any((System.nanoTime() - warmStart) / 1e9 < warmupSeconds)) {
                        break;
                    }
                }
                long start = System.nanoTime();
                for (int i = 0; i < iters; i++) {
                    ranks.allReduce(buffers, type);
                }
                double seconds = ranks.mean((System.nanoTime() - start) / 1e9 / iters);
                double algbw = bytes / seconds / 1e9;
                double busbw = algbw * 2 * (r - 1) / r;
                if (ranks.leader()) {
                    out.printf(Locale.ROOT, "%10s %12d %11.3f %13.3f %13.3f%n", ByteSize.format(bytes),
                            bytes / type.byteSize(), seconds * 1e3, algbw, busbw);
                }
            }
            ranks.finish();
        }
        return 0;
    }

    /** {@code largest} and smaller sizes by factors of 4 down to {@code smallest}, whole elements, ascending. */
    static List<Long> sizes(long largest, long smallest, int elementBytes) {
        List<Long> sizes = new ArrayList<>();
        for (long s = largest; s >= smallest; s /= 4) {
            sizes.addFirst(s / elementBytes * elementBytes);
        }
        return sizes;
    }

    /** Rank r holds r + 1 everywhere; the sum must be R(R+1)/2 everywhere, on every rank. */
    private static void check(Ranks ranks, List<MemorySegment> buffers, ElementType type) {
        int first = ranks.firstRank();
        for (int i = 0; i < buffers.size(); i++) {
            fill(buffers.get(i), type, first + i + 1);
        }
        ranks.allReduce(buffers, type);
        int r = ranks.worldSize();
        float expected = r * (r + 1) / 2f;
        for (MemorySegment b : buffers) {
            long n = b.byteSize() / type.byteSize();
            for (long e = 0; e < n; e++) {
                float got = type == ElementType.FLOAT32 ? b.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, e)
                        : Float.intBitsToFloat(b.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, e) << 16);
                if (got != expected) {
                    throw new IllegalStateException("all-reduce gave " + got + " at element " + e + " of "
                            + b.byteSize() + " bytes, expected " + expected + ": the collective is broken");
                }
            }
        }
    }
    private static void fill(MemorySegment buffer, ElementType type, int value) {
        long n = buffer.byteSize() / type.byteSize();
        short bf16 = (short) (Float.floatToIntBits(value) >>> 16); // small integers are exact in bf16
        for (long e = 0; e < n; e++) {
            if (type == ElementType.FLOAT32) {
                buffer.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, e, value);
            } else {
                buffer.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, e, bf16);
            }
        }
    }

    private Ranks localRanks() {
        if (worldSize < 2) {
            throw new IllegalArgumentException("--world-size must be at least 2, got " + worldSize);
        }
        return new LocalRanks(LocalCluster.start(worldSize, comm.apply(CommunicatorOptions.defaults(JobToken.random()))));
    }

    private Ranks jobRank(Map<String, String> env) {
        if (!env.containsKey("RANK") && !env.containsKey("SLURM_PROCID")) {
            throw new IllegalArgumentException("give --world-size R to run R ranks in this process, or run one process"
                    + " per rank under torchrun, srun or anvil launch");
        }
        CommunicatorOptions options = comm.apply(CommunicatorOptions.defaults(JobToken.fromEnvironment(env)))
                .withFingerprint("allreduce-bench " + size + " " + minSize + " " + dtype + " " + iters + " " + warmup);
        return new JobRank(NettyCommunicator.connect(RendezvousConfig.fromEnvironment(env), options));
    }

    /** R communicators of a {@link LocalCluster}: each all-reduce is issued on all, then awaited. */
    private static final class LocalRanks implements Ranks {
        private final LocalCluster cluster;
        private Arena arena;

        LocalRanks(LocalCluster cluster) {
            this.cluster = cluster;
        }

        @Override
        public int worldSize() {
            return cluster.worldSize();
        }

        @Override
        public boolean leader() {
            return true;
        }

        @Override
        public int firstRank() {
            return 0;
        }

        @Override
        public List<MemorySegment> allocate(long bytes) {
            release();
            arena = Arena.ofShared();
            List<MemorySegment> buffers = new ArrayList<>();
            for (int r = 0; r < cluster.worldSize(); r++) {
                buffers.add(arena.allocate(bytes, 64));
            }
            return buffers;
        }

        @Override
        public void allReduce(List<MemorySegment> buffers, ElementType type) {
            List<CompletableFuture<Void>> pending = new ArrayList<>();
            for (int r = 0; r < buffers.size(); r++) {
                pending.add(cluster.rank(r).allReduceAsync(buffers.get(r), type, ReduceOp.SUM));
            }
            pending.forEach(Communicator::await);
        }

        @Override
        public double mean(double seconds) {
            return seconds; // one clock measured every rank
        }

        @Override
        public void close() {
            release();
            cluster.close();
        }

        private void release() {
            if (arena != null) {
                arena.close();
                arena = null;
            }
        }
    }

    /** This process's one rank of a launched job. */
    private static final class JobRank implements Ranks {
        private final Communicator comm;
        private Arena arena;

        JobRank(Communicator comm) {
            this.comm = comm;
        }

        @Override
        public int worldSize() {
            return comm.worldSize();
        }

        @Override
        public boolean leader() {
            return comm.rank() == 0;
        }

        @Override
        public int firstRank() {
            return comm.rank();
        }

        @Override
        public List<MemorySegment> allocate(long bytes) {
            release();
            arena = Arena.ofShared();
            return List.of(arena.allocate(bytes, 64));
        }

        @Override
        public void allReduce(List<MemorySegment> buffers, ElementType type) {
            comm.allReduce(buffers.getFirst(), type, ReduceOp.SUM);
        }

        @Override
        public double mean(double seconds) {
            float[] value = {(float) seconds};
            comm.allReduce(MemorySegment.ofArray(value), ElementType.FLOAT32, ReduceOp.MEAN);
            return value[0];
        }

        @Override
        public void finish() {
            comm.finish();
        }

        @Override
        public void close() {
            release();
            comm.close();
        }

        private void release() {
            if (arena != null) {
                arena.close();
                arena = null;
            }
        }
    }
}
