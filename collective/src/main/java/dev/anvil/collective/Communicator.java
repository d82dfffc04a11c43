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
     * Starts an in-place reduce-scatter: afterwards this rank's {@link Shards shard} of {@code buf} holds the
     * reduction of every rank's shard; the rest of {@code buf} holds partial sums and must be treated as garbage. A
     * reduce-scatter followed by an {@link #allGatherAsync all-gather} of the same buffer gives, bit for bit, what
     * {@link #allReduceAsync} gives. Completes in issue order with the other collectives.
     *
     * @param buf elements to reduce, the same size on every rank
     * @param type element type; {@code buf.byteSize()} must be a multiple of its size
     * @param op how to combine
     * @return completes when this rank's shard holds the result and the network no longer reads {@code buf}
     */
    CompletableFuture<Void> reduceScatterAsync(MemorySegment buf, ElementType type, ReduceOp op);

    /** Blocking {@link #reduceScatterAsync}. */
    default void reduceScatter(MemorySegment buf, ElementType type, ReduceOp op) {
        await(reduceScatterAsync(buf, type, op));
    }

    /**
     * Starts an in-place all-gather: each rank contributes its {@link Shards shard} of {@code buf}; afterwards every
     * rank's {@code buf} holds every rank's shard. Completes in issue order with the other collectives.
     *
     * @param buf the whole buffer, the same size on every rank; only this rank's shard is read
     * @param type element type; {@code buf.byteSize()} must be a multiple of its size
     * @return completes when {@code buf} holds every shard and the network no longer reads it
     */
    CompletableFuture<Void> allGatherAsync(MemorySegment buf, ElementType type);

    /** Blocking {@link #allGatherAsync}. */
    default void allGather(MemorySegment buf, ElementType type) {
        await(allGatherAsync(buf, type));
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

    /**
     * Ends this rank's part in a job that went well: returns once every rank called {@code finish} (a barrier), and
     * from then on other ranks closing is expected rather than reported as a lost rank. Call it after the last
     * collective, before {@link #close}.
     */
    void finish();

    /**
     * Closes the connections. Unless every rank {@linkplain #finish finished}, the other ranks see this rank as lost,
     * as they should when it fails. Idempotent.
     */
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
