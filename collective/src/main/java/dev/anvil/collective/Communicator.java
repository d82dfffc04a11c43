package dev.anvil.collective;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * Data-parallel collectives over a fixed group of ranks.
 *
 * <p>Every rank must issue the same collectives, with the same sizes and types, in the same order. Buffers are
 * little-endian host memory that must be accessible from any thread (global, automatic or shared arena, or heap):
 * the network threads read and write them. A buffer must not be touched until its collective completes.
 *
 * <p>After any failure (a lost rank, a timeout, a protocol violation) the communicator is broken: pending and future
 * calls fail with {@link PeerLostException} or {@link CollectiveException}. No call waits forever.
 */
public interface Communicator extends AutoCloseable {

    /** This process's rank, in {@code [0, worldSize())}. */
    int rank();

    /** Number of ranks. */
    int worldSize();

    /**
     * Starts an in-place all-reduce of {@code buf}. Calls complete in issue order, so the engine can all-reduce
     * gradient buckets while its backward pass continues. Every rank ends with bit-identical contents.
     *
     * @param buf elements to reduce; replaced by the result
     * @param type element type; {@code buf.byteSize()} must be a multiple of its size
     * @param op how to combine
     * @return completes when {@code buf} holds the result and the network no longer reads it
     */
    CompletableFuture<Void> allReduceAsync(MemorySegment buf, ElementType type, ReduceOp op);

    /** Blocking {@link #allReduceAsync}. */
    default void allReduce(MemorySegment buf, ElementType type, ReduceOp op) {
        await(allReduceAsync(buf, type, op));
    }

    /**
     * Starts a broadcast: afterwards every rank's {@code buf} holds {@code root}'s bytes.
     *
     * @param buf bytes to send (on root) or to overwrite (elsewhere); same size on every rank
     * @param root the rank whose bytes win
     * @return completes when {@code buf} holds the result and the network no longer reads it
     */
    CompletableFuture<Void> broadcastAsync(MemorySegment buf, int root);

    /** Blocking {@link #broadcastAsync}. */
    default void broadcast(MemorySegment buf, int root) {
        await(broadcastAsync(buf, root));
    }

    /** Returns once every rank has called {@code barrier} (after all collectives issued before it completed). */
    void barrier();

    /** Closes the connections; the other ranks see this rank as lost. Idempotent. */
    @Override
    void close();

    /** Waits for a collective, unwrapping the failure so callers see a {@link CollectiveException}. */
    static void await(CompletableFuture<Void> future) {
        try {
            future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException("interrupted while waiting for a collective", e);
        } catch (ExecutionException | CompletionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof PeerLostException lost) {
                // Re-create so the caller's stack shows where it waited; the network thread's trace is the cause.
                PeerLostException here = new PeerLostException(lost.lostRank(), lost.lostAddress(), lost.reason());
                here.initCause(lost);
                throw here;
            }
            if (cause instanceof CollectiveException c) {
                throw new CollectiveException(c.getMessage(), c);
            }
            throw new CollectiveException("collective failed: " + cause, cause);
        }
    }
}
