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
    final Buffer tokens;
    final Buffer targets;
    final Buffer encoded;
    final Block[] blocks;
    final Buffer lnf;
    final Buffer lnfMean;
    final Buffer lnfRstd;
    /**
     * The LM head's logits for {@link #headRows} rows at a time (see
     * {@link dev.anvil.kernels.TransformerOps#lmHeadCrossEntropy}): never all {@code b·t} at once.
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
     * @param dtype the type of activations and gradient scratch, FP32 or BF16; the statistics
     *              (LayerNorm mean and rstd, attention lse) and the losses are FP32 whatever it is,
     *              as the backends' ops require
     */
    Activations(Backend backend, GptConfig config, int b, int t, boolean training, DType dtype) {
        this.backend = backend;
        this.b = b;
        this.t = t;
        long n = (long) b * t;
        int c = config.channels();
        DType stat = DType.FP32;
        tokens = alloc(DType.INT32, n);
        targets = alloc(DType.INT32, n);
        encoded = alloc(dtype, n * c);
        blocks = new Block[config.numLayers()];
        for (int l = 0; l < blocks.length; l++) {
            blocks[l] = new Block(alloc(dtype, n * c), alloc(stat, n), alloc(stat, n),
                    alloc(dtype, 3 * n * c), alloc(dtype, n * c),
                    alloc(stat, (long) b * config.numHeads() * t), alloc(dtype, n * c),
                    alloc(dtype, n * c), alloc(dtype, n * c), alloc(stat, n), alloc(stat, n),
                    alloc(dtype, 4 * n * c), alloc(dtype, 4 * n * c), alloc(dtype, n * c),
                    alloc(dtype, n * c));
        }
        lnf = alloc(dtype, n * c);
        lnfMean = alloc(stat, n);
        lnfRstd = alloc(stat, n);
        headRows = headRows(n, b, config.paddedVocabSize());
        logits = alloc(dtype, (long) headRows * config.paddedVocabSize());
        losses = alloc(stat, n);
        scratch = training ? new Scratch(alloc(dtype, n * c), alloc(dtype, n * c),
                alloc(dtype, n * c), alloc(dtype, 3 * n * c), alloc(dtype, 4 * n * c),
                alloc(dtype, 4 * n * c)) : null;
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
    boolean fits(int b, int t, boolean training) {
        return this.b == b && t <= this.t && (!training || scratch != null);
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
