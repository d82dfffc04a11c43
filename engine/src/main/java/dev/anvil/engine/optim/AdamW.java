package dev.anvil.engine.optim;

import dev.anvil.engine.model.ParameterLayout;
import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * {@code torch.optim.AdamW} over a model's contiguous parameter buffer, with weight decay on 2-D
 * tensors only and gradient clipping by global L2 norm as {@code torch.nn.utils.clip_grad_norm_}.
 * Its moments are two more buffers of the same layout, always FP32. For BF16 parameters the update
 * is made on the model's FP32 master weights ({@link dev.anvil.engine.model.GptModel#masterWeights})
 * and rounded into the parameters; gradients may be BF16, their norm is summed in fp32 or wider.
 */
public final class AdamW implements AutoCloseable {

    /** A run of adjacent tensors that share a weight-decay setting: one backend call each. */
    private record Group(long offset, long length, boolean decay) {
    }

    private final Backend backend;
    private final AdamWConfig config;
    private final Buffer m;
    private final Buffer v;
    private final Buffer normSquared;
    /** The device-side clip: {norm, scale} ({@link dev.anvil.kernels.OptimizerOps#gradientClip}). */
    private final Buffer clip;
    /** Host copy of {@link #clip} after each {@link #stepClipped}, and the copy's future. */
    private final MemorySegment clipHost;
    private CompletableFuture<Void> clipCopied = CompletableFuture.completedFuture(null);
    /** Whether the last {@link #stepClipped}'s count still awaits its norm (a non-finite one undoes it). */
    private boolean stepUnconfirmed;
    private final List<Group> groups;
    private final float[] hostScalar = new float[1];
    private int step;

    public AdamW(Backend backend, ParameterLayout layout, AdamWConfig config) {
        this.backend = backend;
        this.config = config;
        this.m = backend.allocate(DType.FP32, layout.totalSize());
        this.v = backend.allocate(DType.FP32, layout.totalSize());
        this.normSquared = backend.allocate(DType.FP32, 1);
        this.clip = backend.allocate(DType.FP32, 2);
        this.clipHost = backend.allocateHost(2L * Float.BYTES);
        this.groups = groups(layout);
    }

    private static List<Group> groups(ParameterLayout layout) {
        List<Group> groups = new ArrayList<>();
        for (ParameterLayout.Tensor t : layout.tensors()) {
            Group last = groups.isEmpty() ? null : groups.getLast();
            if (last != null && last.decay() == t.weightDecay()) {
                groups.set(groups.size() - 1, new Group(last.offset(), last.length() + t.size(), last.decay()));
            } else {
                groups.add(new Group(t.offset(), t.size(), t.weightDecay()));
            }
        }
        return List.copyOf(groups);
    }

    public AdamWConfig config() {
        return config;
    }

    /** Number of updates made so far. */
    public int stepCount() {
        return step;
    }

    /**
     * The global L2 norm of {@code grads} (FP32 or BF16), computed on the backend with an fp32 or
     * wider sum; one scalar crosses to the host.
     */
    public float gradientNorm(Buffer grads) {
        backend.sumOfSquares(normSquared, grads);
        backend.download(normSquared, MemorySegment.ofArray(hostScalar));
        return (float) Math.sqrt(hostScalar[0]);
    }

    /**
     * The factor {@code clip_grad_norm_} scales gradients by: {@code maxNorm/(norm + 1e-6)} when
     * that is below 1, else 1 (and 1 when clipping is off).
     */
    public float clipScale(float norm) {
        if (config.gradClip() <= 0f) {
            return 1f;
        }
        float scale = config.gradClip() / (norm + 1e-6f);
        return Math.min(scale, 1f);
    }

    /** {@link #step(Buffer, Buffer, Buffer, float, float)} for FP32 parameters, which need no master weights. */
    public void step(Buffer params, Buffer grads, float lr, float gradScale) {
        step(params, null, grads, lr, gradScale);
    }

    /**
     * One update of {@code params} from {@code grads}, the gradients first scaled by
     * {@code gradScale} (the clip factor).
     *
     * @param master the FP32 master weights when {@code params} is BF16 (updated, then rounded into
     *               {@code params}); {@code null} for FP32 parameters
     */
    public void step(Buffer params, Buffer master, Buffer grads, float lr, float gradScale) {
        step++;
        AdamWStep s = new AdamWStep(lr, config.beta1(), config.beta2(), config.eps(), 0f, step, gradScale);
        AdamWStep decayed = s.withWeightDecay(config.weightDecay());
        for (Group gr : groups) {
            backend.adamw(params.slice(gr.offset(), gr.length()),
                    master == null ? null : master.slice(gr.offset(), gr.length()),
                    grads.slice(gr.offset(), gr.length()), m.slice(gr.offset(), gr.length()),
                    v.slice(gr.offset(), gr.length()), gr.decay() ? decayed : s);
        }
    }

    /**
     * One update with gradient clipping that never waits for the device: the gradients' norm and the
     * clip factor are computed on the backend and AdamW reads the factor there; the norm comes back
     * asynchronously ({@link #lastNorm()}). A non-finite norm skips the update on the backend, so a
     * diverged step leaves the weights and moments as they were. The same arithmetic as
     * {@link #gradientNorm}, {@link #clipScale} and {@link #step(Buffer, Buffer, Buffer, float, float)}.
     */
    public void stepClipped(Buffer params, Buffer master, Buffer grads, float lr) {
        backend.sumOfSquares(normSquared, grads);
        backend.gradientClip(clip, normSquared, config.gradClip());
        step++;
        AdamWStep s = new AdamWStep(lr, config.beta1(), config.beta2(), config.eps(), 0f, step, 1f);
        AdamWStep decayed = s.withWeightDecay(config.weightDecay());
        Buffer scale = clip.slice(1, 1);
        for (Group gr : groups) {
            backend.adamw(params.slice(gr.offset(), gr.length()),
                    master == null ? null : master.slice(gr.offset(), gr.length()),
                    grads.slice(gr.offset(), gr.length()), m.slice(gr.offset(), gr.length()),
                    v.slice(gr.offset(), gr.length()), gr.decay() ? decayed : s, scale);
        }
        clipCopied = backend.downloadAsync(clip, clipHost);
        stepUnconfirmed = true;
    }

    /**
     * The gradient norm of the last {@link #stepClipped}, waiting for its copy to arrive. When it is
     * not finite the backend skipped that update, and {@link #stepCount()} goes back to match.
     */
    public float lastNorm() {
        clipCopied.join();
        float norm = clipHost.get(ValueLayout.JAVA_FLOAT, 0);
        if (stepUnconfirmed && !Float.isFinite(norm)) {
            step--;
        }
        stepUnconfirmed = false;
        return norm;
    }

    /**
     * A host copy of the optimizer's state, for checkpoints.
     *
     * @param step steps taken (bias correction continues from it)
     * @param m    first moments, in parameter layout order
     * @param v    second moments, in parameter layout order
     */
    public record State(int step, float[] m, float[] v) {
    }

    /** Copies the state to the host. */
    public State exportState() {
        return new State(step, download(m), download(v));
    }

    /** Restores a state taken from an optimizer over the same layout. */
    public void importState(State state) {
        if (state.m().length != m.length() || state.v().length != v.length()) {
            throw new IllegalArgumentException("optimizer state holds " + state.m().length + " moments, the model has "
                    + m.length() + " parameters");
        }
        if (state.step() < 0) {
            throw new IllegalArgumentException("step count must be non-negative, got " + state.step());
        }
        backend.upload(m, MemorySegment.ofArray(state.m()));
        backend.upload(v, MemorySegment.ofArray(state.v()));
        step = state.step();
    }

    private float[] download(Buffer buf) {
        float[] host = new float[Math.toIntExact(buf.length())];
        backend.download(buf, MemorySegment.ofArray(host));
        return host;
    }

    @Override
    public void close() {
        m.close();
        v.close();
        normSquared.close();
        clipCopied.join();
        clip.close();
        backend.freeHost(clipHost);
    }
}
