package dev.anvil.collective;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;

/** World size 1: every collective is the identity, so nothing touches the network or the buffer. */
final class SingleRankCommunicator implements Communicator {
    private volatile boolean closed;

    @Override
    public int rank() {
        return 0;
    }

    @Override
    public int worldSize() {
        return 1;
    }

    @Override
    public CompletableFuture<Void> allReduceAsync(MemorySegment buf, ElementType type, ReduceOp op) {
        NettyCommunicator.checkBuffer(buf, type);
        return done();
    }

    @Override
    public CompletableFuture<Void> reduceScatterAsync(MemorySegment buf, ElementType type, ReduceOp op) {
        NettyCommunicator.checkBuffer(buf, type);
        return done();
    }

    @Override
    public CompletableFuture<Void> allGatherAsync(MemorySegment buf, ElementType type) {
        NettyCommunicator.checkBuffer(buf, type);
        return done();
    }

    @Override
    public CompletableFuture<Void> broadcastAsync(MemorySegment buf, int root) {
        NettyCommunicator.checkRoot(root, 1);
        return done();
    }

    @Override
    public void barrier() {
        Communicator.await(done());
    }

    @Override
    public void finish() {
        barrier();
    }

    @Override
    public void close() {
        closed = true;
    }

    private CompletableFuture<Void> done() {
        return closed ? CompletableFuture.failedFuture(new CollectiveException("the communicator was closed"))
                : CompletableFuture.completedFuture(null);
    }
}
