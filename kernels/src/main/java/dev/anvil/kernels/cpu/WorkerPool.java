package dev.anvil.kernels.cpu;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads that run one parallel loop at a time. The calling thread works
 * too, and chunks are handed out through one atomic counter, so uneven chunks balance.
 *
 * <p>A loop is done when all its chunks are done, not when every worker has checked in: a worker
 * the OS has not scheduled yet (two cores shared with a build, say) never holds up a loop it took
 * no part in. Each loop is one small {@link Job}, so a worker that wakes late only ever sees a
 * finished job, never half of the next one.
 */
final class WorkerPool implements AutoCloseable {

    /** The body of a parallel loop over the index range {@code [start, end)}. */
    @FunctionalInterface
    interface Range {
        void run(int start, int end);
    }

    private static final int SPINS_BEFORE_PARK = 20_000;

    /** One parallel loop: its body, its chunk counter and its count of finished chunks. */
    private static final class Job {
        private static final VarHandle NEXT;
        private static final VarHandle DONE;

        static {
            try {
                MethodHandles.Lookup lookup = MethodHandles.lookup();
                NEXT = lookup.findVarHandle(Job.class, "next", int.class);
                DONE = lookup.findVarHandle(Job.class, "done", int.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final Range body;
        final int count;
        final int grain;
        final int chunks;
        volatile int next;
        volatile int done;
        volatile Throwable failure;

        Job(Range body, int count, int grain) {
            this.body = body;
            this.count = count;
            this.grain = grain;
            this.chunks = (int) (((long) count + grain - 1) / grain);
        }

        /** Runs chunks until none are left. */
        void work() {
            for (int c = (int) NEXT.getAndAdd(this, 1); c < chunks; c = (int) NEXT.getAndAdd(this, 1)) {
                int start = c * grain;
                try {
                    if (failure == null) {
                        body.run(start, (int) Math.min(count, (long) start + grain));
                    }
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    DONE.getAndAdd(this, 1);
                }
            }
        }

        boolean finished() {
            return done == chunks;
        }
    }

    private final Thread[] workers;
    private volatile Job job;
    private volatile boolean closed;
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
            Job j = new Job(body, count, grain);
            job = j;
            for (Thread w : workers) {
                LockSupport.unpark(w);
            }
            j.work();
            while (!j.finished()) {
                Thread.onSpinWait();
            }
            Throwable t = j.failure;
            if (t instanceof RuntimeException r) {
                throw r;
            }
            if (t instanceof Error e) {
                throw e;
            }
            if (t != null) {
                throw new IllegalStateException(t);
            }
        } finally {
            inLoop = false;
        }
    }

    private void workerLoop() {
        Job seen = null;
        while (true) {
            int spins = 0;
            Job j;
            while ((j = job) == seen && !closed) {
                if (++spins < SPINS_BEFORE_PARK) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            if (closed) {
                return;
            }
            seen = j;
            j.work();
        }
    }

    @Override
    public void close() {
        closed = true;
        job = null;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
