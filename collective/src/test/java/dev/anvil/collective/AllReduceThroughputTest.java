package dev.anvil.collective;

import dev.anvil.collective.auth.JobToken;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Loopback throughput of a 64 MB fp32 all-reduce, printed as algbw and busbw (algbw * 2(R-1)/R). Off by default:
 * {@code ./mvnw -pl collective test -Dtest=AllReduceThroughputTest -Danvil.bench=true}.
 */
@EnabledIfSystemProperty(named = "anvil.bench", matches = "true")
class AllReduceThroughputTest {
    private static final long BYTES = 64L << 20;

    @ParameterizedTest(name = "{0} ranks")
    @ValueSource(ints = {2, 4})
    void allReduce64MbFloat32(int ranks) {
        try (LocalCluster cluster = LocalCluster.start(ranks, CommunicatorOptions.defaults(JobToken.random()))) {
            List<MemorySegment> bufs = new ArrayList<>();
            for (int r = 0; r < ranks; r++) {
                MemorySegment b = Arena.ofAuto().allocate(BYTES, 64);
                b.fill((byte) 0);
                bufs.add(b);
            }
            int warmup = 3;
            int iterations = 10;
            long best = Long.MAX_VALUE;
            long total = 0;
            for (int i = 0; i < warmup + iterations; i++) {
                long start = System.nanoTime();
                List<CompletableFuture<Void>> fs = new ArrayList<>();
                for (int r = 0; r < ranks; r++) {
                    fs.add(cluster.rank(r).allReduceAsync(bufs.get(r), ElementType.FLOAT32, ReduceOp.SUM));
                }
                fs.forEach(Communicator::await);
                long elapsed = System.nanoTime() - start;
                if (i >= warmup) {
                    best = Math.min(best, elapsed);
                    total += elapsed;
                }
            }
            double mean = total / (double) iterations;
            double algbw = BYTES / (mean / 1e9) / 1e9;
            double busbw = algbw * 2 * (ranks - 1) / ranks;
            System.out.printf("all-reduce 64 MB fp32, R=%d: mean %.1f ms (best %.1f ms), algbw %.2f GB/s,"
                    + " busbw %.2f GB/s%n", ranks, mean / 1e6, best / 1e6, algbw, busbw);
        }
    }
}
