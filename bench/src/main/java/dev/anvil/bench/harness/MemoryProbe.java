package dev.anvil.bench.harness;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.List;
import java.util.OptionalLong;
import java.util.function.Supplier;

/**
 * Peak memory of a run: the JVM heap, off-heap buffers, and device memory where the backend can
 * say how much it uses.
 *
 * <p>Heap: the sum of each heap pool's peak since {@link #reset} (the JVM tracks those itself, so
 * no peak between samples is missed); pools peak at different moments, so it is an upper bound
 * of the heap in use at once. Off-heap (direct and mapped buffer pools) and device memory have no
 * tracked peak: they are the largest of the {@link #sample}s.
 */
final class MemoryProbe {

    private final List<MemoryPoolMXBean> heapPools = ManagementFactory.getMemoryPoolMXBeans().stream()
            .filter(p -> p.getType() == MemoryType.HEAP).toList();
    private final List<BufferPoolMXBean> bufferPools = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class);
    private final Supplier<OptionalLong> deviceBytesInUse;
    private long offHeapPeak;
    private long devicePeak = -1;

    /**
     * @param deviceBytesInUse device memory the backend uses now, or empty when it cannot tell
     *                         (the CPU backend: its buffers are on the heap)
     */
    MemoryProbe(Supplier<OptionalLong> deviceBytesInUse) {
        this.deviceBytesInUse = deviceBytesInUse;
    }

    /** Forgets the peaks so far. */
    void reset() {
        heapPools.forEach(MemoryPoolMXBean::resetPeakUsage);
        offHeapPeak = 0;
        devicePeak = -1;
        sample();
    }

    /** Reads off-heap and device memory now. */
    void sample() {
        long offHeap = 0;
        for (BufferPoolMXBean pool : bufferPools) {
            offHeap += pool.getMemoryUsed();
        }
        offHeapPeak = Math.max(offHeapPeak, offHeap);
        OptionalLong device = deviceBytesInUse.get();
        if (device.isPresent()) {
            devicePeak = Math.max(devicePeak, device.getAsLong());
        }
    }

    /** Upper bound of the heap in use at once since {@link #reset}, in bytes. */
    long heapPeakBytes() {
        long sum = 0;
        for (MemoryPoolMXBean pool : heapPools) {
            sum += pool.getPeakUsage().getUsed();
        }
        return sum;
    }

    /** Largest sampled off-heap buffer memory, in bytes. */
    long offHeapPeakBytes() {
        return offHeapPeak;
    }

    /** Largest sampled device memory in bytes, or {@code null} when the backend does not report it. */
    Long devicePeakBytes() {
        return devicePeak < 0 ? null : devicePeak;
    }
}
