package dev.anvil.bench.harness;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.util.Random;

/** FP32 backend buffers of uniform random values in [-0.5, 0.5), the inputs of the benchmarks. */
public final class RandomBuffers {

    private RandomBuffers() {
    }

    /** A buffer of {@code length} values drawn from {@code random}. */
    public static Buffer uniform(Backend backend, Random random, long length) {
        float[] values = new float[Math.toIntExact(length)];
        for (int i = 0; i < values.length; i++) {
            values[i] = random.nextFloat() - 0.5f;
        }
        Buffer b = backend.allocate(DType.FP32, length);
        backend.upload(b, MemorySegment.ofArray(values));
        return b;
    }
}
