package dev.anvil.engine.checkpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes checkpoints on a background thread while training goes on: a big model's checkpoint
 * takes many seconds to write, which would stall every step (and, in data-parallel training, keep
 * the other ranks waiting in an all-reduce past their timeout). One write at a time: a new one
 * first waits for the previous one and reports its failure. {@link #close} waits for the last, so
 * a process never exits with a checkpoint half written.
 */
public final class BackgroundCheckpoints implements AutoCloseable {

    private final Checkpointer checkpointer;
    private final ExecutorService writer = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "anvil-checkpoint");
        t.setDaemon(true);
        return t;
    });
    private Future<Path> pending;

    public BackgroundCheckpoints(Checkpointer checkpointer) {
        this.checkpointer = checkpointer;
    }

    /**
     * Starts writing {@code snapshot} and returns where it will be.
     *
     * @throws IOException if the previous checkpoint could not be written
     */
    public Path submit(Checkpointer.Snapshot snapshot) throws IOException {
        submit(() -> checkpointer.write(snapshot));
        return checkpointer.pathFor(snapshot.state().step());
    }

    /**
     * Starts {@code write} on the writer thread, first waiting for the previous write.
     *
     * @throws IOException if the previous write failed
     */
    public void submit(Callable<Path> write) throws IOException {
        awaitPending();
        pending = writer.submit(write);
    }

    /** Whether the last write has ended, well or not ({@link #awaitPending} then says which at once). */
    public boolean idle() {
        return pending == null || pending.isDone();
    }

    /** Waits for the checkpoint being written, if any. */
    public void awaitPending() throws IOException {
        if (pending == null) {
            return;
        }
        Future<Path> last = pending;
        pending = null;
        try {
            last.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) {
                throw io;
            }
            if (cause instanceof UncheckedIOException uio) {
                throw uio.getCause();
            }
            throw new IOException("writing a checkpoint failed: " + cause, cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while a checkpoint was being written", e);
        }
    }

    /** Waits for the last checkpoint to be written, then stops the writer thread. */
    @Override
    public void close() throws IOException {
        try {
            awaitPending();
        } finally {
            writer.shutdown();
        }
    }
}
