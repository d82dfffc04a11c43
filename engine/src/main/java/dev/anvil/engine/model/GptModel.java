package dev.anvil.engine.model;

import dev.anvil.kernels.BFloat16;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.stream.IntStream;

/**
 * A GPT-2 model on a backend: its parameters and gradients (each one contiguous buffer, cut into
 * named views by {@link ParameterLayout}), and the hand-written forward and backward passes.
 *
 * <p>Training step: {@link #forward(int[], int[], int, int)}, then {@link #backward()}; gradients
 * accumulate until {@link #zeroGradients()}, so several micro-batches can be summed. Not thread-safe.
 *
 * <p>Precision: an FP32 model holds everything in fp32. A BF16 model trains in mixed precision as
 * llm.c does: parameters, activations and gradients are bf16 (every op still computes in fp32),
 * while the losses, the saved LayerNorm and attention statistics, and a copy of the weights, the
 * {@linkplain #masterWeights() master weights}, stay fp32. The master weights are the model's
 * weights: {@link #writeParameters} and {@link #readParameters} set and return them exactly, the
 * optimizer updates them, and the bf16 parameters are their rounding, which the passes compute with.
 */
public final class GptModel implements AutoCloseable {

    /** Values per bf16 upload slice (32 MB of bits), and per parallel task rounding them. */
    private static final int BF16_SLICE = 1 << 24, BF16_ROUNDING_CHUNK = 1 << 16;

    private final Backend backend;
    private final GptConfig config;
    private final ParameterLayout layout;
    private final DType dtype;
    private final Buffer params;
    /** FP32 master weights of a BF16 model; {@code null} for FP32, whose parameters are their own. */
    private final Buffer master;
    private final Buffer grads;
    private final ModelTensors w;
    private final ModelTensors g;
    private Activations acts;
    private Recompute recompute = Recompute.NONE;
    /**
     * Set by {@link #zeroGradients()} until the next training step has written the gradients: its LM
     * head (in the forward pass) then overwrites the token embedding's gradient and its backward pass
     * the rest, instead of adding into them (GEMMs with β = 0), so they need no zeroing pass.
     */
    private boolean gradientsStale;
    /** While {@link #gradientsStale}: the LM head has overwritten the token embedding's gradient already. */
    private boolean wteGradientWritten;
    private float[] hostLosses = new float[0];
    /** Page-locked host copies of the per-position losses of {@link #forwardStep}'s micro-batches, and their copies. */
    private final List<MemorySegment> lossSlots = new ArrayList<>();
    private final List<CompletableFuture<Void>> lossCopies = new ArrayList<>();
    private long lossSlotBytes;
    /** Batch shape of the last forward pass. */
    private int lastB;
    private int lastT;
    private boolean backwardReady;
    /** A training trunk ran and its {@link #lmHead} has not. */
    private boolean headPending;

    /** An FP32 model: {@link #GptModel(Backend, GptConfig, DType)} with {@link DType#FP32}. */
    public GptModel(Backend backend, GptConfig config) {
        this(backend, config, DType.FP32);
    }

    /**
     * Allocates parameters (zero until {@link #initialize} or {@link #writeParameters}), gradients
     * and, for BF16, the fp32 master weights.
     *
     * @param dtype {@link DType#FP32}, or {@link DType#BF16} for mixed precision (see the class comment)
     * @throws IllegalArgumentException if {@code dtype} is INT32
     * @throws UnsupportedOperationException if the backend cannot hold {@code dtype}
     */
    public GptModel(Backend backend, GptConfig config, DType dtype) {
        this(backend, config, dtype, true);
    }

    /**
     * {@link #GptModel(Backend, GptConfig, DType)}, choosing whether a BF16 model keeps fp32 master
     * weights: a sharded optimizer ({@link dev.anvil.engine.zero.ShardedOptimizer}) keeps only its
     * shard of them, so the model keeps none and its weights are the bf16 parameters.
     *
     * @param masterWeights whether a BF16 model allocates master weights; ignored for FP32
     */
    public GptModel(Backend backend, GptConfig config, DType dtype, boolean masterWeights) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.config = Objects.requireNonNull(config, "config");
        if (dtype != DType.FP32 && dtype != DType.BF16) {
            throw new IllegalArgumentException("a model is FP32 or BF16, not " + dtype);
        }
        this.dtype = dtype;
        this.layout = ParameterLayout.of(config);
        this.params = backend.allocate(dtype, layout.totalSize());
        this.master = dtype == DType.BF16 && masterWeights ? backend.allocate(DType.FP32, layout.totalSize()) : null;
        this.grads = backend.allocate(dtype, layout.totalSize());
        this.w = ModelTensors.slice(params, layout);
        this.g = ModelTensors.slice(grads, layout);
    }

    public GptConfig config() {
        return config;
    }

    public ParameterLayout layout() {
        return layout;
    }

    public Backend backend() {
        return backend;
    }

    /** The type of parameters, activations and gradients: FP32 or BF16. */
    public DType dtype() {
        return dtype;
    }

    /** The contiguous parameter buffer the passes compute with, of {@link #dtype()}. */
    public Buffer parameters() {
        return params;
    }

    /**
     * The FP32 master weights of a BF16 model, laid out like {@link #parameters()}, which hold their
     * bf16 rounding: the optimizer updates these ({@link dev.anvil.kernels.OptimizerOps#adamw}'s
     * {@code master}) and rounds them into the parameters. {@code null} for an FP32 model, and for a
     * BF16 one made without them.
     */
    public Buffer masterWeights() {
        return master;
    }

    /** The contiguous gradient buffer, of {@link #dtype()}, laid out like {@link #parameters()}. */
    public Buffer gradients() {
        materializeZeroGradients();
        return grads;
    }

    /**
     * Which activations training keeps and which the backward pass recomputes (default
     * {@link Recompute#NONE}); takes effect from the next forward pass. Results are the same bit
     * for bit whatever the choice; memory and time are not.
     */
    public void recompute(Recompute mode) {
        this.recompute = Objects.requireNonNull(mode, "mode");
    }

    /** The recomputation in effect for training. */
    public Recompute recompute() {
        return recompute;
    }

    /** Sets GPT-2's initial weights from {@code seed} (see {@link GptInit}). */
    public void initialize(long seed) {
        writeParameters(GptInit.parameters(layout, seed));
    }

    /**
     * Copies host weights, in layout order, into the model: into the parameters of an FP32 model;
     * into the master weights of a BF16 one, exactly, and their bf16 rounding into its parameters.
     */
    public void writeParameters(float[] host) {
        requireLength(host.length);
        if (master != null) {
            backend.upload(master, MemorySegment.ofArray(host));
        }
        upload(params, host);
    }

    /**
     * A host copy of the model's weights in layout order: the parameters of an FP32 model, the
     * master weights of a BF16 one (so a checkpoint of them resumes exactly), or its parameters,
     * widened, if it has none.
     */
    public float[] readParameters() {
        float[] host = new float[Math.toIntExact(layout.totalSize())];
        download(master != null ? master : params, host);
        return host;
    }

    /** A host copy of the gradients in layout order, widened to fp32 if they are BF16. */
    public float[] readGradients() {
        materializeZeroGradients();
        float[] host = new float[Math.toIntExact(layout.totalSize())];
        download(grads, host);
        return host;
    }

    /**
     * Uploads {@code host} into a buffer of FP32 or BF16 (rounded to nearest even). BF16 goes in
     * slices of {@value #BF16_SLICE} values, rounded in parallel: a bf16 copy of gpt-1.3b's weights
     * at once would take 2.6 GB more heap.
     */
    private void upload(Buffer dst, float[] host) {
        if (dst.dtype() == DType.BF16) {
            short[] bits = new short[Math.min(host.length, BF16_SLICE)];
            for (int start = 0; start < host.length; start += bits.length) {
                int from = start, n = Math.min(bits.length, host.length - start);
                IntStream.range(0, (n + BF16_ROUNDING_CHUNK - 1) / BF16_ROUNDING_CHUNK).parallel().forEach(k -> {
                    for (int i = k * BF16_ROUNDING_CHUNK, end = Math.min(n, i + BF16_ROUNDING_CHUNK); i < end; i++) {
                        bits[i] = BFloat16.fromFloat(host[from + i]);
                    }
                });
                backend.upload(dst.slice(from, n), MemorySegment.ofArray(bits).asSlice(0, 2L * n));
            }
        } else {
            backend.upload(dst, MemorySegment.ofArray(host));
        }
    }

    /** Downloads a buffer of FP32 or BF16 (widened, exactly) into {@code host}, of its length. */
    private void download(Buffer src, float[] host) {
        if (src.dtype() == DType.BF16) {
            short[] bits = new short[host.length];
            backend.download(src, MemorySegment.ofArray(bits));
            for (int i = 0; i < host.length; i++) {
                host[i] = BFloat16.toFloat(bits[i]);
            }
        } else {
            backend.download(src, MemorySegment.ofArray(host));
        }
    }

    private void requireLength(long length) {
        if (length != layout.totalSize()) {
            throw new IllegalArgumentException("expected " + layout.totalSize() + " parameters for " + config
                    + ", got " + length);
        }
    }

    /**
     * Bytes this model holds on its backend: parameters, master weights, gradients, and the
     * activations of the largest batch run so far (none before the first forward pass).
     */
    public Memory memory() {
        long elements = layout.totalSize();
        return new Memory(elements * dtype.bytes(), master == null ? 0 : elements * DType.FP32.bytes(),
                elements * dtype.bytes(), acts == null ? 0 : acts.bytes());
    }

    /** What {@link #memory()} reports, in bytes. */
    public record Memory(long parameters, long masterWeights, long gradients, long activations) {
    }

    /**
     * Sets every gradient to zero. Lazily: the next training step (its LM head, then its backward
     * pass) overwrites the gradients instead of adding into them, which is the same and saves a pass
     * over them (and the GEMMs' reads of them).
     */
    public void zeroGradients() {
        gradientsStale = true;
        wteGradientWritten = false;
    }

    /** Zeroes the gradient buffer if {@link #zeroGradients()} is pending, for readers outside a backward pass. */
    private void materializeZeroGradients() {
        if (gradientsStale) {
            // The token embedding comes first in the layout; an LM head since zeroGradients() wrote it.
            long written = wteGradientWritten ? g.wte().length() : 0;
            backend.zero(grads.slice(written, grads.length() - written));
            gradientsStale = false;
            wteGradientWritten = false;
        }
    }

    /**
     * Forward pass of a training step: returns the mean cross-entropy over the {@code b·t}
     * positions and prepares {@link #backward()} to add the gradient of that mean. The LM head's
     * part of the gradient (into the token embedding) is added here already (written, after
     * {@link #zeroGradients()}), with the loss, so that the logits never exist for all positions at
     * once: follow every training forward with {@link #backward()} before the gradients are read.
     */
    public float forward(int[] inputs, int[] targets, int b, int t) {
        return forward(inputs, targets, b, t, 1f);
    }

    /**
     * Forward pass of a training step whose gradient is scaled by {@code lossScale}: with
     * gradient accumulation over {@code k} micro-batches, pass {@code 1/k} so the summed gradient
     * is that of the mean loss over all of them.
     */
    public float forward(int[] inputs, int[] targets, int b, int t, float lossScale) {
        forwardTrunk(inputs, b, t);
        return lmHead(targets, lossScale);
    }

    /**
     * {@link #forward(int[], int[], int, int, float)} without waiting for the loss: the per-position
     * losses are copied to the host behind the pass, and {@link #takeLosses()} returns each
     * micro-batch's mean. Nothing in a training step then waits for the device until its end.
     */
    public void forwardStep(int[] inputs, int[] targets, int b, int t, float lossScale) {
        forwardTrunk(inputs, b, t);
        lmHeadStep(targets, lossScale);
    }

    /**
     * The first part of {@link #forward(int[], int[], int, int, float)}: embeddings, every block
     * and the final LayerNorm of a training step, without the LM head. Follow it with
     * {@link #lmHead} or {@link #lmHeadStep}; the two parts let a profiler time the LM head on its own.
     */
    public void forwardTrunk(int[] inputs, int b, int t) {
        prepare(inputs, null, b, t, t, true);
        headPending = true;
    }

    /**
     * The second part of {@link #forward(int[], int[], int, int, float)}: the LM head and the
     * cross-entropy of {@code targets} against the last {@link #forwardTrunk}, fused with their
     * backward (the token embedding's gradient is added, or written after {@link #zeroGradients()};
     * dlnf is kept for {@link #backward()}). Returns the mean loss.
     */
    public float lmHead(int[] targets, float lossScale) {
        trainingHead(targets, lossScale);
        return meanLoss(lastB * lastT);
    }

    /**
     * {@link #lmHead} without waiting for the loss, as {@link #forwardStep}: {@link #takeLosses()}
     * returns it.
     */
    public void lmHeadStep(int[] targets, float lossScale) {
        trainingHead(targets, lossScale);
        int n = lastB * lastT;
        long bytes = 4L * n;
        if (bytes != lossSlotBytes) {
            takeLosses();
            lossSlots.forEach(backend::freeHost);
            lossSlots.clear();
            lossSlotBytes = bytes;
        }
        int k = lossCopies.size();
        if (k == lossSlots.size()) {
            lossSlots.add(backend.allocateHost(bytes));
        }
        lossCopies.add(backend.downloadAsync(acts.losses.slice(0, n), lossSlots.get(k)));
    }

    /** {@link #lmHead} up to the loss on the device, which prepares {@link #backward()}. */
    private void trainingHead(int[] targets, float lossScale) {
        if (!headPending) {
            throw new IllegalStateException("lmHead() needs forwardTrunk() first, once per trunk");
        }
        headPending = false;
        long n = (long) lastB * lastT;
        if (Objects.requireNonNull(targets, "targets").length < n) {
            throw new IllegalArgumentException("a batch of " + lastB + "x" + lastT + " needs " + n + " targets, got "
                    + targets.length);
        }
        head(targets, true, lossScale / ((float) lastB * lastT));
        backwardReady = true;
    }

    /**
     * The mean loss of each micro-batch passed to {@link #forwardStep} or {@link #lmHeadStep} since the
     * last call, in order; waits for their copies (which were queued before each backward pass, so
     * they are usually there).
     */
    public float[] takeLosses() {
        float[] means = new float[lossCopies.size()];
        int n = (int) (lossSlotBytes / 4);
        for (int k = 0; k < means.length; k++) {
            lossCopies.get(k).join();
            MemorySegment slot = lossSlots.get(k);
            double sum = 0.0;
            for (int i = 0; i < n; i++) {
                sum += slot.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            }
            means[k] = (float) (sum / n);
        }
        lossCopies.clear();
        return means;
    }

    /** Mean cross-entropy of {@code targets} given {@code inputs}, without gradients. */
    public float evaluate(int[] inputs, int[] targets, int b, int t) {
        Objects.requireNonNull(targets, "targets");
        prepare(inputs, targets, b, t, t, false);
        head(targets, false, 0f);
        return meanLoss(b * t);
    }

    /**
     * Logits of the last position of each row: {@code [b, vocabSize]} on the host, for sampling.
     * {@code t} may be shorter than the longest sequence.
     */
    public float[][] lastLogits(int[] inputs, int b, int t) {
        // Sized for the longest sequence, so generating token after token reuses one allocation.
        prepare(inputs, null, b, t, config.maxSeqLen(), false);
        int vp = config.paddedVocabSize();
        int c = config.channels();
        float[][] out = new float[b][config.vocabSize()];
        for (int row = 0; row < b; row++) {
            // The last position of each sequence only: that is all sampling reads.
            Buffer logits = acts.logits.slice((long) row * vp, vp);
            backend.matmulForward(logits, acts.lnf.slice(((long) row * t + t - 1) * c, c), w.wte(), null, 1, c, vp);
            download(logits.slice(0, config.vocabSize()), out[row]);
        }
        return out;
    }

    /** Checks the batch, fits the activations to it and runs the trunk. */
    private void prepare(int[] inputs, int[] targets, int b, int t, int capacityT, boolean training) {
        backwardReady = false;
        headPending = false;
        checkBatch(inputs, targets, b, t);
        if (acts == null || !acts.fits(b, t, training, recompute)) {
            if (acts != null) {
                acts.close();
            }
            acts = new Activations(backend, config, b, capacityT, training, dtype, recompute);
        }
        lastB = b;
        lastT = t;
        int n = b * t;
        backend.upload(acts.tokens.slice(0, n), MemorySegment.ofArray(inputs).asSlice(0, 4L * n));
        trunk(b, t);
    }

    /** The LM head and the per-position losses; with {@code training}, its gradient too (see {@link #lmHead}). */
    private void head(int[] targets, boolean training, float gradScale) {
        int n = lastB * lastT;
        backend.upload(acts.targets.slice(0, n), MemorySegment.ofArray(targets).asSlice(0, 4L * n));
        Buffer dlnf = training ? acts.scratch.dln() : null;
        boolean accumulate = true;
        if (training) {
            backend.zero(dlnf);
            // The first writer of wte's gradient after zeroGradients() overwrites it (β = 0).
            accumulate = !gradientsStale || wteGradientWritten;
            wteGradientWritten = gradientsStale;
        }
        backend.lmHeadCrossEntropy(acts.losses, dlnf, training ? g.wte() : null, acts.lnf, w.wte(), acts.targets,
                acts.logits, n, config.channels(), config.vocabSize(), config.paddedVocabSize(), gradScale,
                accumulate);
    }

    private void checkBatch(int[] inputs, int[] targets, int b, int t) {
        if (b <= 0 || t <= 0) {
            throw new IllegalArgumentException("batch size and sequence length must be positive, got b=" + b + ", t=" + t);
        }
        if (t > config.maxSeqLen()) {
            throw new IllegalArgumentException("sequence length " + t + " exceeds the model's " + config.maxSeqLen()
                    + " positions");
        }
        long n = (long) b * t;
        if (inputs.length < n || (targets != null && targets.length < n)) {
            throw new IllegalArgumentException("a batch of " + b + "x" + t + " needs " + n + " tokens, got "
                    + inputs.length + (targets == null ? "" : " inputs and " + targets.length + " targets"));
        }
    }

    /**
     * Embedding, every block and the final LayerNorm, leaving the result in {@code acts.lnf}. Each
     * residual add is fused with the LayerNorm that reads its result (the next block's first, or the
     * final one).
     */
    private void trunk(int b, int t) {
        int n = b * t;
        int c = config.channels();
        backend.encoderForward(acts.encoded, acts.tokens, w.wte(), w.wpe(), b, t, c);
        Activations.Block first = acts.blocks[0];
        backend.layerNormForward(first.ln1(), first.ln1Mean(), first.ln1Rstd(), acts.encoded, w.blocks()[0].ln1w(),
                w.blocks()[0].ln1b(), n, c);
        for (int l = 0; l < config.numLayers(); l++) {
            forwardBlock(l, b, t, false);
            Activations.Block a = acts.blocks[l];
            if (l + 1 < config.numLayers()) {
                Activations.Block next = acts.blocks[l + 1];
                BlockTensors p = w.blocks()[l + 1];
                backend.residualLayerNormForward(a.residual3(), next.ln1(), next.ln1Mean(), next.ln1Rstd(),
                        a.residual2(), a.fcproj(), p.ln1w(), p.ln1b(), n, c);
            } else {
                backend.residualLayerNormForward(a.residual3(), acts.lnf, acts.lnfMean, acts.lnfRstd, a.residual2(),
                        a.fcproj(), w.lnfw(), w.lnfb(), n, c);
            }
        }
    }

    /**
     * Block {@code l} from its LayerNorm 1 output (already in {@code ln1}) to the MLP's down-projection
     * ({@code fcproj}); the residual add after it is the caller's. As a recomputation for the backward
     * pass ({@code recomputing}), it first redoes LayerNorm 1 from the block's input, then only what
     * {@link Activations#recompute} shares: the attention half alone for {@link Recompute#ATTENTION},
     * and never the down-projection, whose output the backward pass does not read.
     */
    private void forwardBlock(int l, int b, int t, boolean recomputing) {
        int n = b * t;
        int c = config.channels();
        BlockTensors p = w.blocks()[l];
        Activations.Block a = acts.blocks[l];
        Buffer residual = acts.residualInto(l);
        if (recomputing) {
            backend.layerNormForward(a.ln1(), a.ln1Mean(), a.ln1Rstd(), residual, p.ln1w(), p.ln1b(), n, c);
        }
        backend.matmulForward(a.qkv(), a.ln1(), p.qkvw(), p.qkvb(), n, c, 3 * c);
        backend.attentionForward(a.atty(), a.lse(), a.qkv(), b, t, c, config.numHeads());
        if (recomputing && acts.recompute == Recompute.ATTENTION) {
            return;
        }
        backend.matmulForward(a.attproj(), a.atty(), p.attprojw(), p.attprojb(), n, c, c);
        backend.residualLayerNormForward(a.residual2(), a.ln2(), a.ln2Mean(), a.ln2Rstd(), residual, a.attproj(),
                p.ln2w(), p.ln2b(), n, c);
        backend.matmulGeluForward(a.fchGelu(), a.fch(), a.ln2(), p.fcw(), p.fcb(), n, c, 4 * c);
        if (!recomputing) {
            backend.matmulForward(a.fcproj(), a.fchGelu(), p.fcprojw(), p.fcprojb(), n, 4 * c, c);
        }
    }

    private float meanLoss(int n) {
        if (hostLosses.length < n) {
            hostLosses = new float[n];
        }
        backend.download(acts.losses.slice(0, n), MemorySegment.ofArray(hostLosses).asSlice(0, 4L * n));
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            sum += hostLosses[i];
        }
        return (float) (sum / n);
    }

    /**
     * Told during the backward pass each time a region of the gradient buffer is final, so
     * data-parallel sync can start on it while the earlier layers are still computing. Regions come
     * from the end of the buffer to its start, each adjoining the previous one.
     */
    @FunctionalInterface
    public interface GradientListener {
        /** Gradients {@code [offset, offset + length)} will not change again in this backward pass. */
        void ready(long offset, long length);
    }

    /**
     * Backward pass of the last {@link #forward}: adds the gradient of its (scaled) mean loss into
     * {@link #gradients()}. The gradient buffer is filled from its end (ln_f, then the last block)
     * to its start (the embeddings).
     */
    public void backward() {
        backward((offset, length) -> { });
    }

    /** {@link #backward()}, telling {@code listener} as each region of the gradients becomes final. */
    public void backward(GradientListener listener) {
        if (!backwardReady) {
            throw new IllegalStateException("backward() needs a training forward() first, once per forward");
        }
        backwardReady = false;
        int b = lastB;
        int t = lastT;
        int n = b * t;
        int c = config.channels();
        // After zeroGradients() the parameter gradients are overwritten, not added into: the GEMMs
        // write theirs with β = 0; the few others (LayerNorms, position embedding) are zeroed here.
        // The token embedding's was written by the LM head, unless zeroGradients() came after it.
        boolean accumulate = !gradientsStale;
        if (!accumulate) {
            backend.zero(g.wpe());
            backend.zero(g.lnfw());
            backend.zero(g.lnfb());
            if (!wteGradientWritten) {
                backend.zero(g.wte());
            }
        }
        gradientsStale = false;
        wteGradientWritten = false;
        Activations.Scratch s = acts.scratch;
        // The LM head's share ran with the loss in forward(): dlnf waits in dln, wte's gradient is in.
        backend.zero(s.dresidual());
        backend.layerNormBackward(s.dresidual(), g.lnfw(), g.lnfb(), s.dln(), acts.residualInto(config.numLayers()),
                w.lnfw(), acts.lnfMean, acts.lnfRstd, n, c);
        long end = layout.totalSize();
        for (int l = config.numLayers(); l >= 0; l--) {
            if (l < config.numLayers()) {
                backwardBlock(l, b, t, accumulate);
            }
            long start = layout.blockStart(l);
            listener.ready(start, end - start);
            end = start;
        }
        backend.encoderBackward(g.wte(), g.wpe(), s.dresidual(), acts.tokens, b, t, c);
        listener.ready(0, end);
    }

    /**
     * One block's backward. On entry {@code dresidual} holds the gradient of the block's output; the
     * residual connections pass it straight through, and each branch adds its input gradient to it.
     * Activations the forward pass did not keep are recomputed first (see {@link Recompute}).
     */
    private void backwardBlock(int l, int b, int t, boolean accumulate) {
        int n = b * t;
        int c = config.channels();
        BlockTensors p = w.blocks()[l];
        BlockTensors gp = g.blocks()[l];
        Activations.Block a = acts.blocks[l];
        Activations.Scratch s = acts.scratch;
        Buffer residual = acts.residualInto(l);
        if (acts.recompute != Recompute.NONE) {
            forwardBlock(l, b, t, true);
        }
        if (!accumulate) {
            for (Buffer layerNormGrad : new Buffer[] {gp.ln1w(), gp.ln1b(), gp.ln2w(), gp.ln2b()}) {
                backend.zero(layerNormGrad);
            }
        }

        // MLP: the down-projection's backward writes the GELU's input gradient (its derivative fused).
        backend.matmulGeluBackward(s.dfch(), s.dfchGelu(), gp.fcprojw(), gp.fcprojb(), s.dresidual(), a.fchGelu(),
                p.fcprojw(), a.fch(), n, 4 * c, c, accumulate);
        backend.zero(s.dln());
        backend.matmulBackward(s.dln(), gp.fcw(), gp.fcb(), s.dfch(), a.ln2(), p.fcw(), n, c, 4 * c, accumulate);
        backend.layerNormBackward(s.dresidual(), gp.ln2w(), gp.ln2b(), s.dln(), a.residual2(), p.ln2w(),
                a.ln2Mean(), a.ln2Rstd(), n, c);

        backend.zero(s.datty());
        backend.matmulBackward(s.datty(), gp.attprojw(), gp.attprojb(), s.dresidual(), a.atty(), p.attprojw(), n, c, c,
                accumulate);
        backend.zero(s.dqkv());
        backend.attentionBackward(s.dqkv(), s.datty(), a.qkv(), a.atty(), a.lse(), b, t, c, config.numHeads());
        backend.zero(s.dln());
        backend.matmulBackward(s.dln(), gp.qkvw(), gp.qkvb(), s.dqkv(), a.ln1(), p.qkvw(), n, c, 3 * c, accumulate);
        backend.layerNormBackward(s.dresidual(), gp.ln1w(), gp.ln1b(), s.dln(), residual, p.ln1w(),
                a.ln1Mean(), a.ln1Rstd(), n, c);
    }

    @Override
    public void close() {
        takeLosses();
        lossSlots.forEach(backend::freeHost);
        if (acts != null) {
            acts.close();
        }
        params.close();
        if (master != null) {
            master.close();
        }
        grads.close();
    }
}
