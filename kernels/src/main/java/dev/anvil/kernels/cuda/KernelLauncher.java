package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.Driver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Launches kernels on one stream without allocating: argument values go into a fixed block of
 * 8-byte slots, and the {@code void*[]} that {@code cuLaunchKernel} reads points at those slots once
 * and for all. The driver copies the values at launch, so the slots are reused by the next launch.
 *
 * <pre>{@code launcher.begin(fn).ptr(out).ptr(inp).i32(n).launch(blocks, 256);}</pre>
 */
final class KernelLauncher {

    private static final int SLOTS = 16;

    private final MemorySegment stream;
    private final MemorySegment values;
    private final MemorySegment pointers;
    private MemorySegment function;
    private int count;

    KernelLauncher(Arena arena, MemorySegment stream) {
        this.stream = stream;
        this.values = arena.allocate(8L * SLOTS, 8);
        this.pointers = arena.allocate(ADDRESS, SLOTS);
        for (int i = 0; i < SLOTS; i++) {
            pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
        }
    }

    /** Starts the argument list of a launch of {@code kernel}. */
    KernelLauncher begin(MemorySegment kernel) {
        function = kernel;
        count = 0;
        return this;
    }

    /** A device pointer, or 0 for {@code nullptr}. */
    KernelLauncher ptr(long value) {
        values.set(JAVA_LONG, slot(), value);
        return this;
    }

    /** A {@code size_t}. */
    KernelLauncher size(long value) {
        return ptr(value);
    }

    /** A buffer's device pointer. */
    KernelLauncher ptr(CudaBuffer buffer) {
        return ptr(buffer.pointer());
    }

    /** An {@code int}. */
    KernelLauncher i32(int value) {
        values.set(JAVA_INT, slot(), value);
        return this;
    }

    /** A {@code float}. */
    KernelLauncher f32(float value) {
        values.set(JAVA_FLOAT, slot(), value);
        return this;
    }

    private long slot() {
        if (count == SLOTS) {
            throw new IllegalStateException("more than " + SLOTS + " kernel arguments");
        }
        return 8L * count++;
    }

    /** Launches a 1-D grid of {@code blocks} blocks of {@code threads} threads. */
    void launch(int blocks, int threads) {
        launch(blocks, 1, threads);
    }

    /** Launches a {@code gridX × gridY} grid of 1-D blocks with static shared memory only. */
    void launch(int gridX, int gridY, int threads) {
        launch(gridX, gridY, threads, 0);
    }

    /** Launches a {@code gridX × gridY} grid of 1-D blocks, each with {@code sharedBytes} of dynamic shared memory. */
    void launch(int gridX, int gridY, int threads, int sharedBytes) {
        Driver.launchKernel(function, gridX, gridY, 1, threads, 1, 1, sharedBytes, stream, pointers);
    }
}
