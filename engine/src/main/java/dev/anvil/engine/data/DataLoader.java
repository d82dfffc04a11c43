package dev.anvil.engine.data;

/**
 * Batches for one data-parallel rank, in an order fixed by this contract (other tools rely on it):
 *
 * <p>With batch size {@code B}, sequence length {@code T} and {@code R} ranks, rank {@code r} at step
 * {@code k} reads the {@code B*T+1} tokens starting at global index {@code (k*R + r)*B*T} of the source,
 * wrapping round to token 0 past the end. Inputs are the first {@code B*T} of them as {@code B} rows of
 * {@code T}; targets are the same shifted by one token.
 *
 * <p>Everything is a pure function of the step, so resuming at step {@code k} needs no saved state. The
 * epoch of a step is {@code floor(position(k) / size)}: the pass over the data in which its first token
 * lies; a batch that runs past the end finishes with the next epoch's first tokens.
 */
public final class DataLoader {

    private final TokenSource source;
    private final int batchSize;
    private final int seqLen;
    private final int rank;
    private final int worldSize;
    private final int tokensPerBatch;

    /**
     * @throws IllegalArgumentException if the shapes are not positive, {@code rank} is outside
     *                                  {@code [0, worldSize)}, or the source has fewer than {@code B*T+1} tokens
     */
    public DataLoader(TokenSource source, int batchSize, int seqLen, int rank, int worldSize) {
        if (batchSize < 1 || seqLen < 1) {
            throw new IllegalArgumentException("batch size and sequence length must be positive, got B=" + batchSize
                    + " T=" + seqLen);
        }
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " is outside [0, " + worldSize + ")");
        }
        long needed = (long) batchSize * seqLen + 1;
        if (needed > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("B*T = " + (needed - 1) + " is too large for one batch");
        }
        if (source.size() < needed) {
            throw new IllegalArgumentException(source + " is too small for one batch: B*T+1 = " + batchSize + "*"
                    + seqLen + "+1 = " + needed + " tokens are needed; use more data or a smaller batch or sequence");
        }
        this.source = source;
        this.batchSize = batchSize;
        this.seqLen = seqLen;
        this.rank = rank;
        this.worldSize = worldSize;
        this.tokensPerBatch = batchSize * seqLen;
    }

    /** Batch size {@code B}. */
    public int batchSize() {
        return batchSize;
    }

    /** Sequence length {@code T}. */
    public int seqLen() {
        return seqLen;
    }

    /** The token source. */
    public TokenSource source() {
        return source;
    }

    /** Global, unwrapped index of this rank's first token at {@code step}: {@code (step*R + r)*B*T}. */
    public long position(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, got " + step);
        }
        return Math.multiplyExact(Math.addExact(Math.multiplyExact(step, worldSize), rank), tokensPerBatch);
    }

    /** The epoch (0-based) in which this rank's batch at {@code step} starts. */
    public long epoch(long step) {
        return position(step) / source.size();
    }

    /**
     * Fills {@code inputs} and {@code targets} (each at least {@code B*T} long, row-major {@code [B][T]}) with
     * this rank's batch at {@code step}, allocating nothing.
     *
     * @return the step's {@linkplain #epoch epoch}
     */
    public long load(long step, int[] inputs, int[] targets) {
        if (inputs.length < tokensPerBatch || targets.length < tokensPerBatch) {
            throw new IllegalArgumentException("inputs and targets need B*T = " + tokensPerBatch + " ints, got "
                    + inputs.length + " and " + targets.length);
        }
        long size = source.size();
        long position = position(step);
        long start = position % size;
        int first = (int) Math.min(tokensPerBatch, size - start);
        source.read(start, inputs, 0, first);
        source.read(0, inputs, first, tokensPerBatch - first);
        System.arraycopy(inputs, 1, targets, 0, tokensPerBatch - 1);
        targets[tokensPerBatch - 1] = source.get((start + tokensPerBatch) % size);
        return position / size;
    }
}
