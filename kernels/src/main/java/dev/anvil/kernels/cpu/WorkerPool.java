package dev.anvil.kernels.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads that run one parallel loop at a time. The calling thread works
 * too, chunks are handed out through one atomic counter (so uneven chunks balance), and nothing is
 * allocated per loop: a training step runs hundreds of these.
 */
final class WorkerPool implements AutoCloseable {

    /** The body of a parallel loop over the index range {@code [start, end)}. */
    @FunctionalInterface
    interface Range {
        void run(int start, int end);
    }

    private static final int SPINS_BEFORE_PARK = 20_000;

    private final Thread[] workers;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private volatile long generation;
    private volatile boolean closed;
    private volatile Range body;
    private volatile int count;
    private volatile int grain;
    private volatile Throwable failure;
    private boolean inLoop;

    WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        workers = new Thread[threads - 1];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = Thread.ofPlatform().daemon().name("anvil-cpu-" + (w + 1)).unstarted(this::workerLoop);
            workers[w].start();
        }
    }

    /** Number of threads that run a loop, the caller included. */
    int threads() {
        return workers.length + 1;
    }

    /** Runs {@code body} over {@code [0, count)} in chunks sized for about four chunks per thread. */
    void forEach(int count, Range body) {
        forEach(count, Math.max(1, count / (4 * threads())), body);
    }

    /**
     * Runs {@code body} over {@code [0, count)} in chunks of {@code grain} indices and returns when
     * all are done. A loop started from inside a loop body runs on the calling thread alone.
     */
    void forEach(int count, int grain, Range body) {
        if (count <= 0) {
            return;
        }
        if (workers.length == 0 || count <= grain || inLoop) {
            body.run(0, count);
            return;
        }
        inLoop = true;
        try {
            this.body = body;
            this.count = count;
            this.grain = grain;
            this.failure = null;
            next.set(0);
            running.set(workers.length);
            generation++;
            for (Thread w : workers) {
                LockSupport.unpark(w);
            }
            work();
            while (running.get() != 0) {
                Thread.onSpinWait();
            }
            this.body = null;
            Throwable t = failure;
            if (t != null) {
                if (t instanceof RuntimeException r) {
                    throw r;
                }
                if (t instanceof Error e) {
                    throw e;
                }
                throw new IllegalStateException(t);
            }
        } finally {
            inLoop = false;
        }
    }

    private void work() {
        Range b = body;
        int n = count;
        int g = grain;
        try {
            for (int s = next.getAndAdd(g); s < n; s = next.getAndAdd(g)) {
                b.run(s, Math.min(n, s + g));
            }
        } catch (Throwable t) {
            failure = t;
            next.set(n);
        }
    }

    private void workerLoop() {
        long seen = 0;
        while (true) {
            int spins = 0;
            while (generation == seen && !closed) {
                if (++spins < SPINS_BEFORE_PARK) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            if (closed) {
                return;
            }
            seen = generation;
            work();
            running.decrementAndGet();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
