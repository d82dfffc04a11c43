package dev.anvil.bench.harness;

import java.util.Arrays;

/**
 * Splits a step's wall time into {@link Phase}s. Each {@link #lap} first waits for the backend, so
 * work queued asynchronously (a GPU stream) is charged to the phase that queued it.
 */
final class PhaseClock {

    private final Runnable synchronize;
    private final long[] nanos = new long[Phase.values().length];
    private long last;

    /** @param synchronize waits until the backend's queued work is done ({@code Backend::synchronize}) */
    PhaseClock(Runnable synchronize) {
        this.synchronize = synchronize;
    }

    /** Starts a step: clears the phases and starts timing from now. */
    void start() {
        synchronize.run();
        Arrays.fill(nanos, 0);
        last = System.nanoTime();
    }

    /** Charges the time since the last lap (or {@link #start}) to {@code phase}. */
    void lap(Phase phase) {
        synchronize.run();
        long now = System.nanoTime();
        nanos[phase.ordinal()] += now - last;
        last = now;
    }

    /** Nanoseconds per phase of this step, indexed by {@link Phase#ordinal()}. */
    long[] phases() {
        return nanos.clone();
    }
}
