package dev.anvil.engine.model;

import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * A GPT-2 model on a backend: its parameters and gradients (each one contiguous buffer, cut into
 * named views by {@link ParameterLayout}), and the hand-written forward and backward passes.
 *
 * <p>Training step: {@link #forward(int[], int[], int, int)}, then {@link #backward()}; gradients
 * accumulate until {@link #zeroGradients()}, so several micro-batches can be summed. Not thread-safe.
 */
public final class GptModel implements AutoCloseable {

    private final Backend backend;
    private final GptConfig config;
    private final ParameterLayout layout;
    private final Buffer params;
    private final Buffer grads;
    private final ModelTensors w;
    private final ModelTensors g;
    private Activations acts;
    private float[] hostLosses = new float[0];
    /** Batch shape of the last forward pass. */
    private int lastB;
    private int lastT;
    private boolean backwardReady;

    /** Allocates parameters (zero until {@link #initialize} or {@link #writeParameters}) and gradients. */
    public GptModel(Backend backend, GptConfig config) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.config = Objects.requireNonNull(config, "config");
        this.layout = ParameterLayout.of(config);
        this.params = backend.allocate(DType.FP32, layout.totalSize());
        this.grads = backend.allocate(DType.FP32, layout.totalSize());
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

    /** The contiguous parameter buffer. */
    public Buffer parameters() {
        return params;
    }

    /** The contiguous gradient buffer, laid out like {@link #parameters()}. */
    public Buffer gradients() {
        return grads;
    }

    /** Sets GPT-2's initial weights from {@code seed} (see {@link GptInit}). */
    public void initialize(long seed) {
        writeParameters(GptInit.parameters(layout, seed));
    }

    /** Copies host parameters, in layout order, into the model. */
    public void writeParameters(float[] host) {
        requireLength(host.length);
        backend.upload(params, MemorySegment.ofArray(host));
    }

    /** A host copy of the parameters in layout order. */
    public float[] readParameters() {
        return download(params);
    }

    /** A host copy of the gradients in layout order. */
    public float[] readGradients() {
        return download(grads);
    }

    private float[] download(Buffer buf) {
        float[] host = new float[Math.toIntExact(layout.totalSize())];
        backend.download(buf, MemorySegment.ofArray(host));
        return host;
    }

    private void requireLength(long length) {
        if (length != layout.totalSize()) {
            throw new IllegalArgumentException("expected " + layout.totalSize() + " parameters for " + config
                    + ", got " + length);
        }
    }

    /** Sets every gradient to zero. */
    public void zeroGradients() {
        backend.zero(grads);
    }

    /**
     * Forward pass of a training step: returns the mean cross-entropy over the {@code b·t}
     * positions and prepares {@link #backward()} to add the gradient of that mean.
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
        float loss = run(inputs, Objects.requireNonNull(targets, "targets"), b, t, t, true, lossScale / ((float) b * t));
        backwardReady = true;
        return loss;
    }

    /** Mean cross-entropy of {@code targets} given {@code inputs}, without gradients. */
    public float evaluate(int[] inputs, int[] targets, int b, int t) {
        backwardReady = false;
        return run(inputs, Objects.requireNonNull(targets, "targets"), b, t, t, false, 0f);
    }

    /**
     * Logits of the last position of each row: {@code [b, vocabSize]} on the host, for sampling.
     * {@code t} may be shorter than the longest sequence.
     */
    public float[][] lastLogits(int[] inputs, int b, int t) {
        backwardReady = false;
        // Sized for the longest sequence, so generating token after token reuses one allocation.
        run(inputs, null, b, t, config.maxSeqLen(), false, 0f);
        int vp = config.paddedVocabSize();
        float[][] out = new float[b][config.vocabSize()];
        for (int row = 0; row < b; row++) {
            Buffer last = acts.logits.slice(((long) row * t + t - 1) * vp, config.vocabSize());
            backend.download(last, MemorySegment.ofArray(out[row]));
        }
        return out;
    }

    private float run(int[] inputs, int[] targets, int b, int t, int capacityT, boolean training, float gradScale) {
        checkBatch(inputs, targets, b, t);
        if (acts == null || !acts.fits(b, t, training)) {
            if (acts != null) {
                acts.close();
            }
            acts = new Activations(backend, config, b, capacityT, training);
        }
        lastB = b;
        lastT = t;
        int n = b * t;
        backend.upload(acts.tokens.slice(0, n), MemorySegment.ofArray(inputs).asSlice(0, 4L * n));
        forwardTrunk(b, t);
        backend.matmulForward(acts.logits, acts.lnf, w.wte(), null, n, config.channels(), config.paddedVocabSize());
        if (targets == null) {
            return Float.NaN;
        }
        backend.upload(acts.targets.slice(0, n), MemorySegment.ofArray(targets).asSlice(0, 4L * n));
        backend.softmaxCrossEntropy(acts.losses, acts.logits, acts.targets, n, config.vocabSize(),
                config.paddedVocabSize(), gradScale);
        return meanLoss(n);
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

    /** Embedding, every block and the final LayerNorm, leaving the result in {@code acts.lnf}. */
    private void forwardTrunk(int b, int t) {
        int n = b * t;
        int c = config.channels();
        int nc = n * c;
        backend.encoderForward(acts.encoded, acts.tokens, w.wte(), w.wpe(), b, t, c);
        for (int l = 0; l < config.numLayers(); l++) {
            BlockTensors p = w.blocks()[l];
            Activations.Block a = acts.blocks[l];
            Buffer residual = acts.residualInto(l);
            backend.layerNormForward(a.ln1(), a.ln1Mean(), a.ln1Rstd(), residual, p.ln1w(), p.ln1b(), n, c);
            backend.matmulForward(a.qkv(), a.ln1(), p.qkvw(), p.qkvb(), n, c, 3 * c);
            backend.attentionForward(a.atty(), a.lse(), a.qkv(), b, t, c, config.numHeads());
            backend.matmulForward(a.attproj(), a.atty(), p.attprojw(), p.attprojb(), n, c, c);
            backend.residualForward(a.residual2(), residual, a.attproj(), nc);
            backend.layerNormForward(a.ln2(), a.ln2Mean(), a.ln2Rstd(), a.residual2(), p.ln2w(), p.ln2b(), n, c);
            backend.matmulForward(a.fch(), a.ln2(), p.fcw(), p.fcb(), n, c, 4 * c);
            backend.geluForward(a.fchGelu(), a.fch(), 4 * nc);
            backend.matmulForward(a.fcproj(), a.fchGelu(), p.fcprojw(), p.fcprojb(), n, 4 * c, c);
            backend.residualForward(a.residual3(), a.residual2(), a.fcproj(), nc);
        }
        backend.layerNormForward(acts.lnf, acts.lnfMean, acts.lnfRstd, acts.residualInto(config.numLayers()),
                w.lnfw(), w.lnfb(), n, c);
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
        Activations.Scratch s = acts.scratch;
        // LM head: the fused cross-entropy left dL/dlogits in the logits buffer.
        backend.zero(s.dln());
        backend.matmulBackward(s.dln(), g.wte(), null, acts.logits, acts.lnf, w.wte(), n, c, config.paddedVocabSize());
        backend.zero(s.dresidual());
        backend.layerNormBackward(s.dresidual(), g.lnfw(), g.lnfb(), s.dln(), acts.residualInto(config.numLayers()),
                w.lnfw(), acts.lnfMean, acts.lnfRstd, n, c);
        long end = layout.totalSize();
        for (int l = config.numLayers(); l >= 0; l--) {
            if (l < config.numLayers()) {
                backwardBlock(l, b, t);
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
     */
    private void backwardBlock(int l, int b, int t) {
        int n = b * t;
        int c = config.channels();
        BlockTensors p = w.blocks()[l];
        BlockTensors gp = g.blocks()[l];
        Activations.Block a = acts.blocks[l];
        Activations.Scratch s = acts.scratch;
        Buffer residual = acts.residualInto(l);

        backend.zero(s.dfchGelu());
        backend.matmulBackward(s.dfchGelu(), gp.fcprojw(), gp.fcprojb(), s.dresidual(), a.fchGelu(), p.fcprojw(), n, 4 * c, c);
        backend.zero(s.dfch());
        backend.geluBackward(s.dfch(), a.fch(), s.dfchGelu(), 4 * n * c);
        backend.zero(s.dln());
        backend.matmulBackward(s.dln(), gp.fcw(), gp.fcb(), s.dfch(), a.ln2(), p.fcw(), n, c, 4 * c);
        backend.layerNormBackward(s.dresidual(), gp.ln2w(), gp.ln2b(), s.dln(), a.residual2(), p.ln2w(),
                a.ln2Mean(), a.ln2Rstd(), n, c);

        backend.zero(s.datty());
        backend.matmulBackward(s.datty(), gp.attprojw(), gp.attprojb(), s.dresidual(), a.atty(), p.attprojw(), n, c, c);
        backend.zero(s.dqkv());
        backend.attentionBackward(s.dqkv(), s.datty(), a.qkv(), a.atty(), a.lse(), b, t, c, config.numHeads());
        backend.zero(s.dln());
        backend.matmulBackward(s.dln(), gp.qkvw(), gp.qkvb(), s.dqkv(), a.ln1(), p.qkvw(), n, c, 3 * c);
        backend.layerNormBackward(s.dresidual(), gp.ln1w(), gp.ln1b(), s.dln(), residual, p.ln1w(),
                a.ln1Mean(), a.ln1Rstd(), n, c);
    }

    @Override
    public void close() {
        if (acts != null) {
            acts.close();
        }
        params.close();
        grads.close();
    }
}
