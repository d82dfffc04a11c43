package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.Driver;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Timing events on a CUDA backend's stream, for profiles: {@link #mark()} records an event where
 * the queued work currently ends, without waiting; {@link #millis()} waits for the last one and
 * gives the GPU time between consecutive marks. Events are pooled, so a profile of thousands of
 * ops creates them once. Used from the backend's thread; close before the backend.
 */
public final class EventTimeline implements AutoCloseable {

    private final CudaBackend backend;
    private final MemorySegment stream;
    private final List<MemorySegment> events = new ArrayList<>();
    private int marks;

    EventTimeline(CudaBackend backend, MemorySegment stream) {
        this.backend = backend;
        this.stream = stream;
    }

    /** Records an event at the current end of the stream; returns its index. */
    public int mark() {
        backend.enterForTimeline();
        if (marks == events.size()) {
            events.add(Driver.eventCreate(0));
        }
        Driver.eventRecord(events.get(marks), stream);
        return marks++;
    }

    /** Waits for the last mark; element i is the milliseconds from mark i to mark i + 1. Then starts over. */
    public float[] millis() {
        backend.enterForTimeline();
        float[] out = new float[Math.max(0, marks - 1)];
        if (marks > 0) {
            Driver.eventSynchronize(events.get(marks - 1));
        }
        for (int i = 0; i < out.length; i++) {
            out[i] = Driver.eventElapsedMillis(events.get(i), events.get(i + 1));
        }
        marks = 0;
        return out;
    }

    @Override
    public void close() {
        backend.enterForTimeline();
        events.forEach(Driver::eventDestroy);
        events.clear();
    }
}
