package dev.anvil.engine.checkpoint;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.ReduceOp;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.ParameterShard;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Checkpoints of a run whose optimizer state is sharded across ranks (ZeRO-1): every rank writes
 * its shard of the optimizer state, rank 0 also the model, the training state, the manifest and the
 * index ({@link OptimizerFiles}), all into the one hidden directory of the step, on each rank's
 * background writer so training goes on meanwhile.
 *
 * <p>The directory is renamed into place, by rank 0, only once every rank has written its part: the
 * ranks agree on that with a tiny all-reduce after each step ({@link #poll}) while a checkpoint is
 * unfinished. A crash at any moment so leaves no checkpoint or a complete one, as with one rank.
 * Every method except {@link #close} must be called by every rank at the same step, from the
 * training thread, since they may run collectives.
 */
public final class ShardedCheckpoints implements AutoCloseable {

    /**
     * What this rank writes of a checkpoint.
     *
     * @param state   where the run stood
     * @param moments the optimizer state of this rank's shard, packed
     * @param master  the fp32 master weights of this rank's shard, packed, or {@code null} (FP32 model)
     * @param config  the model's shape (read on rank 0 only)
     * @param params  the model's weights, in layout order (rank 0 only; {@code null} elsewhere)
     * @param manifest what produced the run (rank 0 only; {@code null} elsewhere)
     */
    public record Snapshot(TrainingState state, AdamW.State moments, float[] master, GptConfig config, float[] params,
                           RunManifest manifest) {
    }

    private final Checkpointer checkpointer;
    private final Communicator comm;
    private final List<ParameterShard> shards;
    private final BackgroundCheckpoints writer;
    private final float[] flags = new float[2];
    private final MemorySegment flagSegment = MemorySegment.ofArray(flags);
    /** The step of the checkpoint being written, or -1. The same on every rank. */
    private int unfinished = -1;

    /**
     * @param shards every rank's shard of the parameters, by rank (rank 0 writes them into the index)
     */
    public ShardedCheckpoints(Checkpointer checkpointer, Communicator comm, List<ParameterShard> shards) {
        if (shards.size() != comm.worldSize()) {
            throw new IllegalArgumentException(shards.size() + " shards for " + comm.worldSize() + " ranks");
        }
        this.checkpointer = checkpointer;
        this.comm = comm;
        this.shards = List.copyOf(shards);
        this.writer = new BackgroundCheckpoints(checkpointer);
    }

    /**
     * Starts writing this rank's part of the checkpoint of {@code snapshot}'s step, after finishing
     * the previous checkpoint (waiting for it if need be), and returns where it will be.
     *
     * @throws IOException if a rank could not write its part of the previous checkpoint
     */
    public Path save(Snapshot snapshot) throws IOException {
        finishWriting(true);
        int step = snapshot.state().step();
        boolean leader = comm.rank() == 0;
        if (leader) {
            writer.awaitPending(); // the previous checkpoint is in place before begin() clears what crashes leave
        }
        Path partial = leader ? checkpointer.begin(step) : checkpointer.partialFor(step);
        comm.barrier(); // the directory exists, empty, before any rank writes into it
        writer.submit(() -> {
            if (leader) {
                Checkpointer.writeModel(partial, snapshot.config(), snapshot.params(), snapshot.state(),
                        snapshot.manifest());
                OptimizerFiles.writeIndex(partial, snapshot.moments().step(), snapshot.params().length, shards,
                        snapshot.master() != null);
            }
            OptimizerFiles.writeShard(partial, comm.rank(), comm.worldSize(), snapshot.moments(), snapshot.master());
            Checkpointer.haltIfAsked("optimizer", step);
            return partial;
        });
        unfinished = step;
        return checkpointer.pathFor(step);
    }

    /**
     * Completes the checkpoint being written once every rank has written its part; call after every
     * step. Costs one all-reduce of two numbers while a checkpoint is unfinished, nothing otherwise.
     *
     * @throws IOException if a rank could not write its part
     */
    public void poll() throws IOException {
        finishWriting(false);
    }

    /** Waits until every rank has written its part of the last checkpoint, and completes it. */
    public void finish() throws IOException {
        finishWriting(true);
        writer.awaitPending();
    }

    /**
     * Agrees with the other ranks whether all have written their part of the unfinished checkpoint;
     * if so rank 0 completes it in the background.
     *
     * @param wait whether to wait for this rank's part first, so that the checkpoint is completed
     */
    private void finishWriting(boolean wait) throws IOException {
        if (unfinished < 0) {
            return;
        }
        IOException failure = null;
        boolean written = wait || writer.idle();
        if (written) {
            try {
                writer.awaitPending();
            } catch (IOException e) {
                failure = e;
            }
        }
        flags[0] = written ? 1 : 0;
        flags[1] = failure != null ? 1 : 0;
        comm.allReduce(flagSegment, ElementType.FLOAT32, ReduceOp.SUM);
        int step = unfinished;
        if (flags[1] > 0) {
            unfinished = -1;
            throw failure != null ? failure : new IOException("another rank could not write its part of the "
                    + "checkpoint of step " + step + "; it stays incomplete and is not used");
        }
        if (flags[0] < comm.worldSize()) {
            return;
        }
        unfinished = -1;
        if (comm.rank() == 0) {
            List<String> files = new ArrayList<>(Checkpointer.MODEL_FILES);
            files.addAll(OptimizerFiles.shardedFiles(comm.worldSize()));
            writer.submit(() -> checkpointer.commit(step, files));
        }
    }

    /** Waits for this rank's writes; a checkpoint not completed stays hidden and unused. */
    @Override
    public void close() throws IOException {
        writer.close();
    }
}
