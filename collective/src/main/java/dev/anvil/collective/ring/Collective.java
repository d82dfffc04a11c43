package dev.anvil.collective.ring;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/** One issued collective: its parts on every channel, its future, and when it last made progress. */
final class Collective {
    final long seq;
    final CompletableFuture<Void> future = new CompletableFuture<>();
    RingOp[] parts;
    private final AtomicInteger partsLeft;
    private final Runnable onDone;
    private volatile long lastProgressNanos = System.nanoTime();

    /** @param onDone runs (on whichever thread finishes the last part) once every part is done */
    Collective(long seq, int channels, Runnable onDone) {
        this.seq = seq;
        this.partsLeft = new AtomicInteger(channels);
        this.onDone = onDone;
    }

    void partDone() {
        if (partsLeft.decrementAndGet() == 0) {
            onDone.run();
        }
    }

    boolean isDone() {
        return partsLeft.get() == 0;
    }

    void progress() {
        lastProgressNanos = System.nanoTime();
    }

    long lastProgressNanos() {
        return lastProgressNanos;
    }

    String describe() {
        return parts[0].describe();
    }
}
