package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.Driver;

import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Device-to-host copies that do not hold up the compute stream: each waits (on the GPU) for an
 * event recorded on the compute stream, runs on a copy stream of its own into page-locked memory,
 * and completes its future from a waiter thread once its end event fires. The host never
 * synchronizes the compute stream, so the backward pass keeps queueing while gradient buckets (or
 * a step's losses) travel. Also owns that page-locked memory.
 */
final class AsyncCopies implements AutoCloseable {

    private final MemorySegment context;
    private final MemorySegment computeStream;
    private final MemorySegment copyStream;
    /** One platform thread, the context current on it, waits for the copies in the order they were queued. */
    private final ExecutorService waiter;
    /** Page-locked allocations by address: their sizes. */
    private final Map<Long, Long> pinned = new TreeMap<>();

    AsyncCopies(MemorySegment context, MemorySegment computeStream) {
        this.context = context;
        this.computeStream = computeStream;
        this.copyStream = Driver.streamCreate(Driver.STREAM_NON_BLOCKING);
        this.waiter = Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("anvil-cuda-copies")::unstarted);
    }

    /** Page-locked host memory of {@code bytes}. */
    MemorySegment allocate(long bytes) {
        MemorySegment host = Driver.memHostAlloc(Math.max(1, bytes)).reinterpret(bytes);
        pinned.put(host.address(), bytes);
        return host;
    }

    /** Frees memory of {@link #allocate}; whether it was. */
    boolean free(MemorySegment host) {
        if (pinned.remove(host.address()) == null) {
            return false;
        }
        Driver.memFreeHost(host);
        return true;
    }

    /** Whether {@code host} lies within one page-locked allocation of this backend. */
    boolean isPinned(MemorySegment host) {
        long start = host.address(), end = start + host.byteSize();
        for (Map.Entry<Long, Long> e : pinned.entrySet()) {
            if (start >= e.getKey() && end <= e.getKey() + e.getValue()) {
                return true;
            }
        }
        return false;
    }

    /** Queues {@code bytes} from device address {@code src} into {@code dst}, behind the compute stream's work so far. */
    CompletableFuture<Void> download(MemorySegment dst, long src, long bytes) {
        MemorySegment queued = Driver.eventCreate(Driver.EVENT_DISABLE_TIMING);
        MemorySegment copied = Driver.eventCreate(Driver.EVENT_DISABLE_TIMING);
        Driver.eventRecord(queued, computeStream);
        Driver.streamWaitEvent(copyStream, queued);
        Driver.memcpyDtoHAsync(dst, src, bytes, copyStream);
        Driver.eventRecord(copied, copyStream);
        CompletableFuture<Void> done = new CompletableFuture<>();
        waiter.execute(() -> {
            try {
                Driver.setCurrentContext(context);
                Driver.eventSynchronize(copied);
                Driver.eventDestroy(queued);
                Driver.eventDestroy(copied);
                done.complete(null);
            } catch (RuntimeException e) {
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    /** Waits for the copies in flight, then frees the stream and the page-locked memory. */
    @Override
    public void close() {
        waiter.shutdown();
        try {
            waiter.awaitTermination(1, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Driver.streamSynchronize(copyStream);
        Driver.streamDestroy(copyStream);
        for (Long address : pinned.keySet()) {
            Driver.memFreeHost(MemorySegment.ofAddress(address));
        }
        pinned.clear();
    }
}
