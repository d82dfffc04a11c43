package dev.anvil.engine.optim;

import dev.anvil.engine.model.GptModel;
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
 *
 * <p>It may own only a {@link ParameterShard} of the buffer (a ZeRO rank's): then its moments, and
 * the master weights it is given, hold just those elements, packed; the update and the norm's sum
 * of squares cover just those, each element exactly as when the whole buffer is owned.
 */
public final class AdamW implements Optimizer, AutoCloseable {

    /**
     * A run of owned elements that share a weight-decay setting: one backend call each.
     *
     * @param offset first element in the parameter buffer
     * @param local  first element in the moments (and packed master weights)
     */
    private record Group(long offset, long local, long length, boolean decay) {
    }

    private final Backend backend;
    private final AdamWConfig config;
    private final ParameterShard shard;
    private final Buffer m;
    private final Buffer v;
    private final Buffer normSquared;
    /** The device-side clip: {norm, factor} ({@link dev.anvil.kernels.OptimizerOps#gradientClip}). */
    private final Buffer clip;
    /** Host copy of {@link #clip} after each device-side {@link #stepClipped}. */
    private final MemorySegment clipHost;
    private CompletableFuture<Void> clipCopied = CompletableFuture.completedFuture(null);
    private final List<Group> groups;
    private final float[] hostSquares;
    private int step;

    /** AdamW over the whole parameter buffer. */
    public AdamW(Backend backend, ParameterLayout layout, AdamWConfig config) {
        this(backend, layout, config, ParameterShard.whole(layout.totalSize()));
    }

    /** AdamW over {@code shard} of the parameter buffer, with weight decay as for the whole. */
    public AdamW(Backend backend, ParameterLayout layout, AdamWConfig config, ParameterShard shard) {
        this.backend = backend;
        this.config = config;
        this.shard = shard;
        this.m = backend.allocate(DType.FP32, Math.max(1, shard.size()));
        this.v = backend.allocate(DType.FP32, Math.max(1, shard.size()));
        this.normSquared = backend.allocate(DType.FP32, Math.max(1, shard.runs().size()));
        this.hostSquares = new float[shard.runs().size()];
        this.clip = backend.allocate(DType.FP32, 2);
        this.clipHost = backend.allocateHost(2L * Float.BYTES);
        this.groups = groups(layout, shard);
    }

    /** The owned runs cut where weight decay changes, adjacent runs that share it merged. */
    private static List<Group> groups(ParameterLayout layout, ParameterShard shard) {
        List<Group> groups = new ArrayList<>();
        for (ParameterShard.Run run : shard.runs()) {
            for (ParameterLayout.Tensor t : layout.tensors()) {
                long start = Math.max(run.offset(), t.offset());
                long end = Math.min(run.end(), t.offset() + t.size());
                if (start >= end) {
                    continue;
                }
                long local = run.local() + start - run.offset();
                Group last = groups.isEmpty() ? null : groups.getLast();
                if (last != null && last.decay() == t.weightDecay() && last.offset() + last.length() == start
                        && last.local() + last.length() == local) {
                    groups.set(groups.size() - 1, new Group(last.offset(), last.local(), last.length() + end - start,
                            last.decay()));
                } else {
                    groups.add(new Group(start, local, end - start, t.weightDecay()));
                }
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

    /** The elements this optimizer updates. */
    public ParameterShard shard() {
        return shard;
    }

    /**
     * The L2 norm of the owned part of {@code grads} (FP32 or BF16): the global norm when the whole
     * buffer is owned. See {@link #sumOfSquares}.
     */
    public float gradientNorm(Buffer grads) {
        return (float) Math.sqrt(sumOfSquares(grads));
    }

    @Override
    public float gradientNorm(GptModel model) {
        return gradientNorm(model.gradients());
    }

    /**
     * The sum of squares of the owned part of {@code grads}: each run's sum computed on the backend
     * with an fp32 or wider accumulator and rounded to fp32 (one scalar per run crosses to the host),
     * the runs' sums added in double in buffer order.
     */
    public double sumOfSquares(Buffer grads) {
        List<ParameterShard.Run> runs = shard.runs();
        for (int k = 0; k < runs.size(); k++) {
            backend.sumOfSquares(normSquared.slice(k, 1), grads.slice(runs.get(k).offset(), runs.get(k).length()));
        }
        if (runs.isEmpty()) {
            return 0;
        }
        backend.download(normSquared.slice(0, runs.size()), MemorySegment.ofArray(hostSquares));
        double sum = 0;
        for (float s : hostSquares) {
            sum += s;
        }
        return sum;
    }

    /**
     * The factor {@code clip_grad_norm_} scales gradients by: {@code maxNorm/(norm + 1e-6)} when
     * that is below 1, else 1 (and 1 when clipping is off).
     */
    @Override
    public float clipScale(float norm) {
        if (config.gradClip() <= 0f) {
            return 1f;
        }
        float scale = config.gradClip() / (norm + 1e-6f);
        return Math.min(scale, 1f);
    }

    @Override
    public void step(GptModel model, float lr, float gradScale) {
        step(model.parameters(), model.masterWeights(), model.gradients(), lr, gradScale);
    }

    @Override
    public CompletableFuture<Float> stepClipped(GptModel model, float lr) {
        return stepClipped(model.parameters(), model.masterWeights(), model.gradients(), lr);
    }

    /**
     * One clipped update that never waits for the device, when this optimizer owns the whole buffer:
     * the gradients' norm and the clip factor are computed on the backend, AdamW reads the factor
     * there, and the norm comes back asynchronously (the future). A non-finite norm skips the update
     * on the backend, weights and moments unchanged, and is not counted in {@link #stepCount()} once
     * the future has completed. The same arithmetic as {@link #gradientNorm(Buffer)},
     * {@link #clipScale} and {@link #step(Buffer, Buffer, Buffer, float, float)}, which an optimizer of a
     * shard uses instead (its norm needs the other ranks'), as {@link Optimizer#stepClipped} does.
     */
    public CompletableFuture<Float> stepClipped(Buffer params, Buffer master, Buffer grads, float lr) {
        List<ParameterShard.Run> runs = shard.runs();
        boolean whole = runs.size() == 1 && runs.getFirst().offset() == 0 && runs.getFirst().local() == 0
                && runs.getFirst().length() == grads.length();
        if (!whole) {
            float norm = gradientNorm(grads);
            if (Float.isFinite(norm)) {
                step(params, master, grads, lr, clipScale(norm));
            }
            return CompletableFuture.completedFuture(norm);
        }
        clipCopied.join();  // the host copy of the previous step's norm is not overwritten under its reader
        backend.sumOfSquares(normSquared.slice(0, 1), grads);
        backend.gradientClip(clip, normSquared.slice(0, 1), config.gradClip());
        step++;
        AdamWStep s = new AdamWStep(lr, config.beta1(), config.beta2(), config.eps(), 0f, step, 1f);
        AdamWStep decayed = s.withWeightDecay(config.weightDecay());
        Buffer factor = clip.slice(1, 1);
        for (Group gr : groups) {
            backend.adamw(params.slice(gr.offset(), gr.length()),
                    master == null ? null : master.slice(gr.local(), gr.length()),
                    grads.slice(gr.offset(), gr.length()), m.slice(gr.local(), gr.length()),
                    v.slice(gr.local(), gr.length()), gr.decay() ? decayed : s, factor);
        }
        clipCopied = backend.downloadAsync(clip, clipHost);
        return clipCopied.thenApply(done -> {
            float norm = clipHost.get(ValueLayout.JAVA_FLOAT, 0);
            if (!Float.isFinite(norm)) {
                step--;  // the backend skipped it
            }
            return norm;
        });
    }

    @Override
    public long stateBytes() {
        return 2 * shard.size() * DType.FP32.bytes();
    }

    /** {@link #step(Buffer, Buffer, Buffer, float, float)} for FP32 parameters, which need no master weights. */
    public void step(Buffer params, Buffer grads, float lr, float gradScale) {
        step(params, null, grads, lr, gradScale);
    }

    /**
     * One update of the owned part of {@code params} from {@code grads}, the gradients first scaled
     * by {@code gradScale} (the clip factor).
     *
     * @param params the whole parameter buffer
     * @param master the FP32 master weights of the owned elements, packed as the moments are (the
     *               whole buffer's when all is owned), when {@code params} is BF16 (updated, then rounded
     *               into {@code params}); {@code null} for FP32 parameters
     * @param grads  the whole gradient buffer
     */
    public void step(Buffer params, Buffer master, Buffer grads, float lr, float gradScale) {
        step++;
        AdamWStep s = new AdamWStep(lr, config.beta1(), config.beta2(), config.eps(), 0f, step, gradScale);
        AdamWStep decayed = s.withWeightDecay(config.weightDecay());
        for (Group gr : groups) {
            backend.adamw(params.slice(gr.offset(), gr.length()),
                    master == null ? null : master.slice(gr.local(), gr.length()),
                    grads.slice(gr.offset(), gr.length()), m.slice(gr.local(), gr.length()),
                    v.slice(gr.local(), gr.length()), gr.decay() ? decayed : s);
        }
    }

    /**
     * A host copy of the optimizer's state, for checkpoints.
     *
     * @param step steps taken (bias correction continues from it)
     * @param m    first moments of the owned elements, packed (the whole buffer's in layout order)
     * @param v    second moments, packed likewise
     */
    public record State(int step, float[] m, float[] v) {
    }

    /** Copies the state to the host. */
    public State exportState() {
        return new State(step, download(m), download(v));
    }

    /** Restores a state taken from an optimizer over the same layout and shard. */
    public void importState(State state) {
        if (state.m().length != shard.size() || state.v().length != shard.size()) {
            throw new IllegalArgumentException("optimizer state holds " + state.m().length + " moments, this optimizer owns "
                    + shard.size() + " parameters");
        }
        if (state.step() < 0) {
            throw new IllegalArgumentException("step count must be non-negative, got " + state.step());
        }
        backend.upload(m.slice(0, shard.size()), MemorySegment.ofArray(state.m()));
        backend.upload(v.slice(0, shard.size()), MemorySegment.ofArray(state.v()));
        step = state.step();
    }

    private float[] download(Buffer buf) {
        float[] host = new float[Math.toIntExact(shard.size())];
        backend.download(buf.slice(0, host.length), MemorySegment.ofArray(host));
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
