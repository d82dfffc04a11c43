package dev.anvil.engine.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.ReduceOp;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cpu.CpuBackend;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend's gradients are Java arrays, which sockets and the Vector API cannot address: GradientSync stages
 * them through one native buffer made up front, the same memory every step, and puts the results back.
 */
class GradientSyncStagingTest {
    private static final int N = 10_000;

    /** A one-rank stand-in that adds 1 to every element, and remembers what it was handed. */
    private static final class Recording implements Communicator {
        final List<MemorySegment> handed = new ArrayList<>();

        @Override
        public CompletableFuture<Void> allReduceAsync(MemorySegment buf, ElementType type, ReduceOp op) {
            handed.add(buf);
            for (long i = 0; i < buf.byteSize() / 4; i++) {
                buf.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, buf.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED,
                        i) + 1);
            }
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public int rank() {
            return 0;
        }

        @Override
        public int worldSize() {
            return 2;
        }

        @Override
        public CompletableFuture<Void> reduceScatterAsync(MemorySegment buf, ElementType type, ReduceOp op) {
            throw new UnsupportedOperationException();
        }

        @Override
        public CompletableFuture<Void> allGatherAsync(MemorySegment buf, ElementType type) {
            throw new UnsupportedOperationException();
        }

        @Override
        public CompletableFuture<Void> broadcastAsync(MemorySegment buf, int root) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void barrier() {
        }

        @Override
        public void finish() {
        }

        @Override
        public void close() {
        }
    }

    @Test
    void cpuGradientsAreStagedThroughTheSameNativeBufferEveryStepAndComeBackReduced() {
        Recording comm = new Recording();
        try (CpuBackend backend = new CpuBackend(1)) {
            Buffer grads = backend.allocate(DType.FP32, N);
            GradientSync sync = new GradientSync(comm, backend, grads, 4 * 3000);
            List<Long> firstStep = new ArrayList<>();
            for (int step = 0; step < 2; step++) {
                float[] values = new float[N];
                for (int i = 0; i < N; i++) {
                    values[i] = i;
                }
                backend.upload(grads, MemorySegment.ofArray(values));
                comm.handed.clear();
                for (long end = N; end > 0; end -= 1000) { // the backward pass finishes regions from the end
                    sync.ready(end - 1000, 1000);
                }
                sync.finish();
                MemorySegment result = MemorySegment.ofArray(new float[N]);
                backend.download(grads, result);
                for (int i = 0; i < N; i++) {
                    assertEquals(i + 1f, result.getAtIndex(ValueLayout.JAVA_FLOAT, i), "element " + i);
                }
                for (MemorySegment handed : comm.handed) {
                    assertTrue(handed.isNative(), "a Java array handed to the communicator would be copied per call");
                    if (step == 0) {
                        firstStep.add(handed.address());
                    }
                }
                assertEquals(firstStep, comm.handed.stream().map(MemorySegment::address).toList(),
                        "the staging memory must be the same every step");
            }
            sync.close();
        }
    }
}
