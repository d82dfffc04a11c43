package dev.anvil.kernels.cpu;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads that run one parallel loop at a time. The calling thread works
 * too. Each thread owns an equal, contiguous range of a loop's chunks and takes them in order;
 * a thread done with its own takes what is left of the others', so uneven chunks balance. Owned
 * ranges keep a thread on the same part of the data from one loop to the next (the same rows of a
 * product, step block after step block), where it is still in that core's cache.
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

    /** One parallel loop: its body, each thread's range of chunks and the count of finished chunks. */
    private static final class Job {
        private static final VarHandle NEXT = MethodHandles.arrayElementVarHandle(int[].class);
        private static final VarHandle DONE;

        static {
            try {
                DONE = MethodHandles.lookup().findVarHandle(Job.class, "done", int.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final Range body;
        final int count;
        final int grain;
        final int chunks;
        final int threads;
        /**
         * Thread {@code t}'s next chunk; its range ends where thread {@code t + 1}'s starts. Not spread
         * over cache lines: a loop is a few dozen chunks, and a job per loop must stay small (a
         * training step runs thousands of loops, and allocates next to nothing else).
         */
        final int[] next;
        volatile int done;
        volatile Throwable failure;

        Job(Range body, int count, int grain, int threads) {
            this.body = body;
            this.count = count;
            this.grain = grain;
            this.chunks = (int) (((long) count + grain - 1) / grain);
            this.threads = threads;
            this.next = new int[threads];
            for (int t = 0; t < threads; t++) {
                next[t] = first(t);
            }
        }

        /** First chunk of thread {@code t}'s range ({@code chunks} for {@code t == threads}). */
        private int first(int t) {
            return (int) ((long) t * chunks / threads);
        }

        /** Runs chunks until none are left: thread {@code self}'s own first, then the others'. */
        void work(int self) {
            for (int i = 0; i < threads; i++) {
                int t = (self + i) % threads, end = first(t + 1);
                for (int c = (int) NEXT.getAndAdd(next, t, 1); c < end; c = (int) NEXT.getAndAdd(next, t, 1)) {
                    run(c);
                }
            }
        }

        private void run(int chunk) {
            int start = chunk * grain;
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
            int self = w + 1;
            workers[w] = Thread.ofPlatform().daemon().name("anvil-cpu-" + self).unstarted(() -> workerLoop(self));
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
            Job j = new Job(body, count, grain, threads());
            job = j;
            for (Thread w : workers) {
                LockSupport.unpark(w);
            }
            j.work(0);
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

    /** Worker {@code self}'s loop (the caller is thread 0): waits for a job, works on it. */
    private void workerLoop(int self) {
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
            j.work(self);
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
