package dev.anvil.engine.model;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.util.ArrayList;
import java.util.List;

/**
 * The activations a forward pass keeps for the backward pass, and the scratch gradients of the
 * backward pass, for {@code b} rows of up to {@code t} positions (ops given a shorter {@code t}
 * use a prefix of each buffer). Allocated once and reused every step.
 *
 * <p>Every block has its {@link Block} record, but a tensor the backward pass recomputes (see
 * {@link Recompute}) is one buffer shared by all blocks, which each block's forward pass overwrites;
 * so are the two projection outputs that only feed a residual add. The residual stream itself is
 * always kept per block.
 */
final class Activations implements AutoCloseable {

    /** Activations of one block. */
    record Block(Buffer ln1, Buffer ln1Mean, Buffer ln1Rstd, Buffer qkv, Buffer atty, Buffer lse, Buffer attproj,
                 Buffer residual2, Buffer ln2, Buffer ln2Mean, Buffer ln2Rstd, Buffer fch, Buffer fchGelu,
                 Buffer fcproj, Buffer residual3) {
    }

    /**
     * Backward-pass scratch, shared by all blocks (each buffer is consumed within one block's
     * backward); {@code dresidual} carries the residual stream's gradient from block to block.
     */
    record Scratch(Buffer dresidual, Buffer dln, Buffer datty, Buffer dqkv, Buffer dfch, Buffer dfchGelu) {
    }

    final int b;
    final int t;
    final Recompute recompute;
    final Buffer tokens;
    final Buffer targets;
    final Buffer encoded;
    final Block[] blocks;
    final Buffer lnf;
    final Buffer lnfMean;
    final Buffer lnfRstd;
    /**
     * The LM head's logits for {@link #headRows} rows at a time (see
     * {@link dev.anvil.kernels.FusedOps#lmHeadCrossEntropy}): never all {@code b·t} at once.
     */
    final Buffer logits;
    final int headRows;
    final Buffer losses;

    /** Gradient scratch of the backward pass, or {@code null} for inference. */
    final Scratch scratch;

    private final List<Buffer> owned = new ArrayList<>();
    private final Backend backend;
    private long bytes;

    /**
     * @param dtype     the type of activations and gradient scratch, FP32 or BF16; the statistics
     *                  (LayerNorm mean and rstd, attention lse) and the losses are FP32 whatever it is,
     *                  as the backends' ops require
     * @param recompute which activations are shared buffers, recomputed by the backward pass (an
     *                  inference pass keeps nothing, so everything but the residual stream is shared)
     */
    Activations(Backend backend, GptConfig config, int b, int t, boolean training, DType dtype, Recompute recompute) {
        this.backend = backend;
        this.b = b;
        this.t = t;
        this.recompute = training ? recompute : Recompute.BLOCK;
        long n = (long) b * t;
        int c = config.channels();
        long nc = n * c, heads = (long) b * config.numHeads() * t;
        DType stat = DType.FP32;
        boolean keepAttention = this.recompute == Recompute.NONE, keepMlp = this.recompute != Recompute.BLOCK;
        tokens = alloc(DType.INT32, n);
        targets = alloc(DType.INT32, n);
        encoded = alloc(dtype, nc);
        Buffer attproj = alloc(dtype, nc), fcproj = alloc(dtype, nc);
        PerBlock attention = new PerBlock(keepAttention);
        PerBlock mlp = new PerBlock(keepMlp);
        blocks = new Block[config.numLayers()];
        for (int l = 0; l < blocks.length; l++) {
            blocks[l] = new Block(attention.get(0, dtype, nc), attention.get(1, stat, n), attention.get(2, stat, n),
                    attention.get(3, dtype, 3 * nc), attention.get(4, dtype, nc), attention.get(5, stat, heads),
                    attproj, mlp.get(0, dtype, nc), mlp.get(1, dtype, nc), mlp.get(2, stat, n), mlp.get(3, stat, n),
                    mlp.get(4, dtype, 4 * nc), mlp.get(5, dtype, 4 * nc), fcproj, alloc(dtype, nc));
        }
        lnf = alloc(dtype, nc);
        lnfMean = alloc(stat, n);
        lnfRstd = alloc(stat, n);
        headRows = headRows(n, b, config.paddedVocabSize());
        logits = alloc(dtype, (long) headRows * config.paddedVocabSize());
        losses = alloc(stat, n);
        scratch = training ? new Scratch(alloc(dtype, nc), alloc(dtype, nc), alloc(dtype, nc), alloc(dtype, 3 * nc),
                alloc(dtype, 4 * nc), alloc(dtype, 4 * nc)) : null;
    }

    /** A block's buffers of one kind: a new one per block when kept, else one shared by all blocks. */
    private final class PerBlock {
        private final boolean kept;
        private final Buffer[] shared = new Buffer[6];

        PerBlock(boolean kept) {
            this.kept = kept;
        }

        Buffer get(int slot, DType dtype, long length) {
            if (kept) {
                return alloc(dtype, length);
            }
            if (shared[slot] == null) {
                shared[slot] = alloc(dtype, length);
            }
            return shared[slot];
        }
    }

    /**
     * The most logits the LM head holds at once: about this many bytes (in fp32). Each chunk past
     * the first streams the head's weight and its gradient through memory once more: on the CPU
     * speed bar (206 MB of logits in full) two chunks cost ~55 ms a step over one, four ~110 ms.
     */
    static final long LOGITS_BUDGET_BYTES = 128L << 20;

    /**
     * Rows of logits the LM head computes at a time: all {@code n} if they fit the budget, else
     * the fewest equal chunks that do; at least {@code b}, so the last position of every sequence
     * fits at once for sampling.
     */
    static int headRows(long n, int b, int vp) {
        long chunks = Math.max(1, Math.ceilDiv(n * vp * Float.BYTES, LOGITS_BUDGET_BYTES));
        return (int) Math.max(b, Math.ceilDiv(n, chunks));
    }

    private Buffer alloc(DType dtype, long length) {
        Buffer buf = backend.allocate(dtype, length);
        owned.add(buf);
        bytes += length * dtype.bytes();
        return buf;
    }

    /** Bytes of all these buffers. */
    long bytes() {
        return bytes;
    }

    /** Whether a batch of {@code b} rows of up to {@code this.t} positions fits these buffers. */
    boolean fits(int b, int t, boolean training, Recompute recompute) {
        return this.b == b && t <= this.t && (!training || (scratch != null && this.recompute == recompute));
    }

    /** The residual stream entering block {@code layer}. */
    Buffer residualInto(int layer) {
        return layer == 0 ? encoded : blocks[layer - 1].residual3();
    }

    @Override
    public void close() {
        for (Buffer buf : owned) {
            buf.close();
        }
        owned.clear();
    }
}
