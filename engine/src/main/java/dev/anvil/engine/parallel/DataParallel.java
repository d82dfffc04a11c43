package dev.anvil.engine.parallel;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.ElementType;
import dev.anvil.collective.ReduceOp;

import java.lang.foreign.MemorySegment;

/**
 * A trainer's view of its data-parallel group: who it is, and the small collectives that keep the
 * ranks in step (the mean loss, a stop that every rank takes at the same step).
 */
public final class DataParallel {

    private final Communicator comm;
    private final float[] scalars = new float[2];
    private final MemorySegment scalarSegment = MemorySegment.ofArray(scalars);

    public DataParallel(Communicator comm) {
        this.comm = comm;
    }

    /** A group of one: every collective is the identity. */
    public static DataParallel single() {
        return new DataParallel(null);
    }

    public int rank() {
        return comm == null ? 0 : comm.rank();
    }

    public int worldSize() {
        return comm == null ? 1 : comm.worldSize();
    }

    /** Rank 0 writes checkpoints and logs. */
    public boolean isLeader() {
        return rank() == 0;
    }

    /** The communicator, or {@code null} for a group of one. */
    public Communicator communicator() {
        return comm;
    }

    /**
     * Agrees on a step's outcome: returns {@code [sum of the values, number of ranks that asked to stop]};
     * every rank gets the same pair, so all stop after the same step.
     */
    public float[] agree(float value, boolean stopRequested) {
        scalars[0] = value;
        scalars[1] = stopRequested ? 1f : 0f;
        if (comm != null) {
            comm.allReduce(scalarSegment, ElementType.FLOAT32, ReduceOp.SUM);
        }
        return new float[] {scalars[0], scalars[1]};
    }
}
