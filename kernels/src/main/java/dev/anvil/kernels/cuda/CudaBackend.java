package dev.anvil.kernels.cuda;

import dev.anvil.kernels.AdamWStep;
import dev.anvil.kernels.Backend;
import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cuda.driver.CublasLt;
import dev.anvil.kernels.cuda.driver.CudaException;
import dev.anvil.kernels.cuda.driver.Driver;
import dev.anvil.kernels.cuda.driver.DriverRequirements;
import dev.anvil.kernels.cuda.driver.LibraryNotFoundException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The GPU backend: device buffers, Anvil's own kernels (built from {@code src/main/cuda}) and
 * cuBLASLt matmuls, all queued on one CUDA stream, so ops return at once and only
 * {@link #download} and {@link #synchronize} wait for the GPU.
 *
 * <p>Types: every op computes in fp32 (or wider) whatever the storage. Its tensors are all FP32 or
 * all BF16, chosen by the first (output) buffer, except for the saved statistics ({@code mean},
 * {@code rstd}, {@code lse}, {@code losses}) which are always FP32, and token ids and targets,
 * INT32. Matmuls may also read BF16 inputs into an FP32 output. AdamW keeps FP32 moments and, for
 * BF16 parameters, FP32 master weights. Inputs the GPU finds invalid (a token id or target outside
 * the vocabulary) are reported by the next {@link #synchronize} or {@link #download} as an
 * {@link IllegalArgumentException}.
 *
 * <p>Threads: a backend is used by one thread at a time (its ops share one stream and one block of
 * launch arguments), but that may be any thread, platform or virtual. A CUDA context is current per
 * OS thread, and a virtual thread can move from one carrier thread to another between calls, so
 * every entry point makes the backend's context current on the calling thread itself
 * ({@code cuCtxSetCurrent}, a few tens of nanoseconds) instead of remembering that it did so. No op
 * blocks between that call and its own driver calls, so a virtual thread cannot be moved to
 * another carrier in the middle of one.
 */
public final class CudaBackend implements Backend {

    private static final String CONVERT_TO_BF16 = "convert_f32_to_bf16", CONVERT_TO_F32 = "convert_bf16_to_f32";
    /** The backend's own entry points: conversions between the storage types ({@code convert.cu}). */
    static final List<String> ENTRY_POINTS = List.of(CONVERT_TO_BF16, CONVERT_TO_F32);
    private static final int ERR_TOKEN = 1, ERR_TARGET = 2;

    private final int device;
    private final String description;
    private final int smCount;
    private final MemorySegment context;
    private final Arena arena = Arena.ofShared();
    private final Set<CudaBuffer> allocations = new LinkedHashSet<>();
    private MemorySegment stream;
    private CudaKernels kernels;
    private CublasLtGemm gemm;
    private DeviceScratch scratch;
    private HostStaging staging;
    private AsyncCopies copies;
    private long workspace;
    private long errorFlag;
    private MemorySegment errorHost;
    private OpContext ops;
    private CudaEncoder encoder;
    private CudaLayerNorm layerNorm;
    private CudaMatmul matmul;
    private CudaAttention attention;
    private CudaGelu gelu;
    private CudaResidual residual;
    private CudaCrossEntropy crossEntropy;
    private CudaAdamW adamw;
    private boolean closed;

    /** Whether this machine can open a CUDA backend: driver, GPU, cuBLASLt and built kernels. */
    public static boolean isAvailable() {
        return unavailableReason().isEmpty();
    }

    /** Why {@link #open()} would fail ({@code "no CUDA device: ..."}), or empty when it should work. */
    public static Optional<String> unavailableReason() {
        return Probe.REASON.map(r -> new CudaUnavailableException(r).getMessage());
    }

    /** Checked once per JVM: the answer cannot change while it runs. */
    private static final class Probe {
        static final Optional<String> REASON = probe();

        /** In order of what to fix first: the driver, then its version, then the rest. */
        private static Optional<String> probe() {
            try {
                if (Driver.loadFailure().isPresent()) {
                    return Optional.of(Driver.loadFailure().get().getMessage());
                }
                try {
                    Driver.init();
                } catch (CudaException e) {
                    if (e.status() == DriverRequirements.STATUS_STUB_LIBRARY) {
                        return Optional.of(DriverRequirements.stubLibrary(Driver.loadedFrom()));
                    }
                    throw e;
                }
                Optional<String> tooOld = DriverRequirements.versionProblem(Driver.driverVersion(),
                        CudaKernels.cudaVersion(), CublasLt.majorVersion());
                if (tooOld.isPresent()) {
                    return tooOld;
                }
                if (CublasLt.loadFailure().isPresent()) {
                    return Optional.of(CublasLt.loadFailure().get().getMessage());
                }
                if (Driver.deviceCount() == 0) {
                    return Optional.of("the CUDA driver sees no GPU");
                }
                if (!CudaKernels.built()) {
                    return Optional.of("the CUDA kernels were not built (nvcc was not found at build time)");
                }
                return Optional.empty();
            } catch (CudaException | LibraryNotFoundException e) {
                return Optional.of(e.getMessage());
            }
        }
    }

    /** Opens device 0 with full-fp32 matmuls. */
    public static CudaBackend open() {
        return open(CudaOptions.defaults());
    }

    /**
     * Opens a backend on {@code options.device()}.
     *
     * @throws CudaUnavailableException with a one-line {@code "no CUDA device: <reason>"} message
     *                                  when there is no usable GPU, driver, cuBLASLt or kernel build
     */
    public static CudaBackend open(CudaOptions options) {
        Optional<String> reason = Probe.REASON;
        if (reason.isPresent()) {
            throw new CudaUnavailableException(reason.get());
        }
        try {
            return new CudaBackend(options);
        } catch (CudaException | LibraryNotFoundException e) {
            throw new CudaUnavailableException(e.getMessage(), e);
        }
    }

    private CudaBackend(CudaOptions options) {
        int count = Driver.deviceCount();
        if (options.device() >= count) {
            throw new CudaUnavailableException("device " + options.device() + " requested, the driver sees " + count);
        }
        device = Driver.device(options.device());
        String name = Driver.deviceName(device);
        int major = Driver.deviceAttribute(device, Driver.ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        int minor = Driver.deviceAttribute(device, Driver.ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        if (major < 8) {
            throw new CudaUnavailableException(name + " has compute capability " + major + "." + minor
                    + "; Anvil's kernels need 8.0 (Ampere) or newer");
        }
        smCount = Driver.deviceAttribute(device, Driver.ATTRIBUTE_MULTIPROCESSOR_COUNT);
        context = Driver.primaryContextRetain(device);
        try {
            enter();
            long total = Driver.memoryInfo()[1];
            int version = Driver.driverVersion();
            // Non-blocking: other libraries' work on the legacy default stream never stalls ours.
            stream = Driver.streamCreate(Driver.STREAM_NON_BLOCKING);
            kernels = new CudaKernels(arena);
            scratch = new DeviceScratch(stream);
            staging = new HostStaging(stream);
            copies = new AsyncCopies(context, stream);
            workspace = Driver.memAlloc(CublasLtGemm.WORKSPACE_BYTES);
            gemm = new CublasLtGemm(arena, stream, workspace, options.tf32());
            errorFlag = Driver.memAlloc(16);
            Driver.memsetD32Async(errorFlag, 0, 4, stream);
            ops = new OpContext(this, kernels, new KernelLauncher(arena, stream), scratch, errorFlag, smCount,
                    Driver.deviceAttribute(device, Driver.ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
            CudaColumnSums sums = new CudaColumnSums(ops);
            encoder = new CudaEncoder(ops);
            layerNorm = new CudaLayerNorm(ops, sums);
            gelu = new CudaGelu(ops);
            matmul = new CudaMatmul(ops, gemm, sums, gelu);
            attention = new CudaAttention(ops, options.attention(), stream);
            residual = new CudaResidual(ops);
            crossEntropy = new CudaCrossEntropy(ops);
            adamw = new CudaAdamW(ops);
            description = String.format("cuda (%s, sm_%d%d, %d SMs, %.1f GiB, driver %d.%d%s, %s attention)", name,
                    major, minor, smCount, total / (double) (1L << 30), version / 1000, version % 1000 / 10,
                    options.tf32() ? ", tf32 matmuls" : "", attention.tensorCores() ? "tensor-core" : "FMA");
            errorHost = arena.allocate(16, 16);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** A timeline of events on this backend's stream, for per-op GPU times (close it before the backend). */
    public EventTimeline timeline() {
        enter();
        return new EventTimeline(this, stream);
    }

    /** {@link #enter()} for {@link EventTimeline}. */
    void enterForTimeline() {
        enter();
    }

    /** Makes this backend's context current on the calling OS thread (see the class comment on threads). */
    private void enter() {
        if (closed) {
            throw new IllegalStateException("the CUDA backend is closed");
        }
        Driver.setCurrentContext(context);
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public boolean supports(DType dtype) {
        return true;
    }

    // ---- memory ----

    @Override
    public CudaBuffer allocate(DType dtype, long length) {
        enter();
        CudaBuffer b = CudaBuffer.allocate(this, dtype, length);
        allocations.add(b);
        zero(b);
        return b;
    }

    /** Called by {@link CudaBuffer#close()} for allocations. */
    void free(CudaBuffer b) {
        if (!closed && allocations.remove(b)) {
            enter();
            Driver.streamSynchronize(stream);  // queued kernels may still use it
            Driver.memFree(b.pointer());
        }
    }

    @Override
    public void zero(Buffer buffer) {
        enter();
        CudaBuffer b = CudaBuffer.of(this, buffer, "buffer");
        if (b.bytes() == 0) {
            return;
        }
        if (b.bytes() % 4 == 0 && b.pointer() % 4 == 0) {
            Driver.memsetD32Async(b.pointer(), 0, b.bytes() / 4, stream);
        } else {
            Driver.memsetD8Async(b.pointer(), (byte) 0, b.bytes(), stream);
        }
    }

    @Override
    public void upload(Buffer dst, MemorySegment src) {
        enter();
        CudaBuffer b = CudaBuffer.of(this, dst, "upload destination");
        requireBytes(src, b, "upload source");
        if (src.isNative()) {
            Driver.memcpyHtoDAsync(b.pointer(), src, src.byteSize(), stream);
            // A pinned source would still be read after return; waiting keeps src free to reuse.
            Driver.streamSynchronize(stream);
        } else {
            staging.upload(b.pointer(), src);
        }
    }

    @Override
    public void download(Buffer src, MemorySegment dst) {
        enter();
        CudaBuffer b = CudaBuffer.of(this, src, "download source");
        requireBytes(dst, b, "download destination");
        if (dst.isNative()) {
            Driver.memcpyDtoHAsync(dst, b.pointer(), dst.byteSize(), stream);
        } else {
            staging.download(dst, b.pointer());
        }
        synchronize();
    }

    /** Page-locked host memory, which {@link #downloadAsync} copies into on its own stream. */
    @Override
    public MemorySegment allocateHost(long bytes) {
        enter();
        return copies.allocate(bytes);
    }

    @Override
    public void freeHost(MemorySegment host) {
        enter();
        copies.free(host);
    }

    /**
     * Into memory from {@link #allocateHost}: a copy on the copy stream, ordered after the work
     * queued so far by an event, with no wait on the compute stream; into other memory, a
     * {@link #download}.
     */
    @Override
    public CompletableFuture<Void> downloadAsync(Buffer src, MemorySegment dst) {
        enter();
        CudaBuffer b = CudaBuffer.of(this, src, "download source");
        requireBytes(dst, b, "download destination");
        if (!copies.isPinned(dst)) {
            download(src, dst);
            return CompletableFuture.completedFuture(null);
        }
        return copies.download(dst, b.pointer(), b.bytes());
    }

    private static void requireBytes(MemorySegment host, CudaBuffer b, String what) {
        if (host.byteSize() != b.bytes()) {
            throw new IllegalArgumentException(what + " holds " + host.byteSize() + " bytes, the buffer " + b.bytes());
        }
    }

    @Override
    public void copy(Buffer dst, Buffer src) {
        enter();
        CudaBuffer d = CudaBuffer.of(this, dst, "dst"), s = CudaBuffer.of(this, src, "src");
        if (d.dtype() != s.dtype() || d.length() != s.length()) {
            throw new IllegalArgumentException("copy needs equal buffers, got " + d + " and " + s);
        }
        Driver.memcpyDtoDAsync(d.pointer(), s.pointer(), s.bytes(), stream);
    }

    /**
     * Converts between FP32 and BF16 ({@code dst[i] = src[i]} rounded to nearest even), e.g. fp32
     * master weights into bf16 parameters; equal types are copied.
     */
    public void convert(Buffer dst, Buffer src) {
        enter();
        CudaBuffer d = CudaBuffer.of(this, dst, "dst"), s = CudaBuffer.of(this, src, "src");
        if (d.length() != s.length()) {
            throw new IllegalArgumentException("convert needs equal lengths, got " + d + " and " + s);
        }
        if (d.dtype() == s.dtype()) {
            copy(d, s);
        } else if (d.dtype() == DType.BF16 && s.dtype() == DType.FP32) {
            ops.launch(kernels.function(CONVERT_TO_BF16)).ptr(d).ptr(s).size(s.length())
                    .launch(ops.grid(s.length()), OpContext.THREADS);
        } else if (d.dtype() == DType.FP32 && s.dtype() == DType.BF16) {
            ops.launch(kernels.function(CONVERT_TO_F32)).ptr(d).ptr(s).size(s.length())
                    .launch(ops.grid(s.length()), OpContext.THREADS);
        } else {
            throw new IllegalArgumentException("convert goes between FP32 and BF16, not " + s.dtype() + " to "
                    + d.dtype());
        }
    }

    @Override
    public void synchronize() {
        enter();
        Driver.streamSynchronize(stream);
        Driver.memcpyDtoHAsync(errorHost, errorFlag, 12, stream);
        Driver.streamSynchronize(stream);
        int code = errorHost.get(JAVA_INT, 0);
        if (code != 0) {
            Driver.memsetD32Async(errorFlag, 0, 4, stream);
            int position = errorHost.get(JAVA_INT, 4), value = errorHost.get(JAVA_INT, 8);
            throw new IllegalArgumentException(switch (code) {
                case ERR_TOKEN -> "token id " + value + " at position " + position + " is outside the vocabulary";
                case ERR_TARGET -> "target " + value + " at position " + position + " is outside the vocabulary";
                default -> "a CUDA kernel reported error " + code + " at position " + position;
            });
        }
    }

    /**
     * Runs {@code work} (which queues ops on this backend) and returns the GPU time it took in
     * milliseconds, measured with CUDA events around it; waits for the work to finish.
     */
    public float timeMillis(Runnable work) {
        enter();
        MemorySegment start = Driver.eventCreate(0), end = Driver.eventCreate(0);
        try {
            Driver.eventRecord(start, stream);
            work.run();
            Driver.eventRecord(end, stream);
            Driver.eventSynchronize(end);
            return Driver.eventElapsedMillis(start, end);
        } finally {
            Driver.eventDestroy(start);
            Driver.eventDestroy(end);
        }
    }

    // ---- transformer and optimizer ops: each family's shape checks and launches live in its own class ----

    @Override
    public void encoderForward(Buffer out, Buffer tokens, Buffer wte, Buffer wpe, int b, int t, int c) {
        enter();
        encoder.forward(out, tokens, wte, wpe, b, t, c);
    }

    @Override
    public void encoderBackward(Buffer dwte, Buffer dwpe, Buffer dout, Buffer tokens, int b, int t, int c) {
        enter();
        encoder.backward(dwte, dwpe, dout, tokens, b, t, c);
    }

    @Override
    public void layerNormForward(Buffer out, Buffer mean, Buffer rstd, Buffer inp, Buffer weight, Buffer bias,
                                 int n, int c) {
        enter();
        layerNorm.forward(out, mean, rstd, inp, weight, bias, n, c);
    }

    @Override
    public void layerNormBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp,
                                  Buffer weight, Buffer mean, Buffer rstd, int n, int c) {
        enter();
        layerNorm.backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, n, c);
    }

    @Override
    public void matmulForward(Buffer out, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc) {
        enter();
        matmul.forward(out, inp, weight, bias, n, c, oc);
    }

    @Override
    public void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                               int n, int c, int oc) {
        enter();
        matmul.backward(dinp, dweight, dbias, dout, inp, weight, n, c, oc, true);
    }

    @Override
    public void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                               int n, int c, int oc, boolean accumulate) {
        enter();
        matmul.backward(dinp, dweight, dbias, dout, inp, weight, n, c, oc, accumulate);
    }

    @Override
    public void matmulGeluForward(Buffer out, Buffer preact, Buffer inp, Buffer weight, Buffer bias, int n, int c,
                                  int oc) {
        enter();
        matmul.geluForward(out, preact, inp, weight, bias, n, c, oc);
    }

    @Override
    public void matmulGeluBackward(Buffer dpreact, Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout,
                                   Buffer inp, Buffer weight, Buffer preact, int n, int c, int oc,
                                   boolean accumulate) {
        enter();
        matmul.geluBackward(dpreact, dinp, dweight, dbias, dout, inp, weight, preact, n, c, oc, accumulate);
    }

    @Override
    public void residualLayerNormForward(Buffer residual, Buffer out, Buffer mean, Buffer rstd, Buffer a, Buffer b,
                                         Buffer weight, Buffer bias, int n, int c) {
        enter();
        layerNorm.residualForward(residual, out, mean, rstd, a, b, weight, bias, n, c);
    }

    @Override
    public void attentionForward(Buffer out, Buffer lse, Buffer qkv, int b, int t, int c, int nh) {
        enter();
        attention.forward(out, lse, qkv, b, t, c, nh);
    }

    @Override
    public void attentionBackward(Buffer dqkv, Buffer dout, Buffer qkv, Buffer out, Buffer lse,
                                  int b, int t, int c, int nh) {
        enter();
        attention.backward(dqkv, dout, qkv, out, lse, b, t, c, nh);
    }

    @Override
    public void geluForward(Buffer out, Buffer inp, int n) {
        enter();
        gelu.forward(out, inp, n);
    }

    @Override
    public void geluBackward(Buffer dinp, Buffer inp, Buffer dout, int n) {
        enter();
        gelu.backward(dinp, inp, dout, n);
    }

    @Override
    public void residualForward(Buffer out, Buffer a, Buffer b, int n) {
        enter();
        residual.forward(out, a, b, n);
    }

    @Override
    public void residualBackward(Buffer da, Buffer db, Buffer dout, int n) {
        enter();
        residual.backward(da, db, dout, n);
    }

    @Override
    public void softmaxCrossEntropy(Buffer losses, Buffer logits, Buffer targets, int n, int v, int vp,
                                    float gradScale) {
        enter();
        crossEntropy.forwardBackward(losses, logits, targets, n, v, vp, gradScale);
    }

    @Override
    public void sumOfSquares(Buffer out, Buffer x) {
        enter();
        adamw.sumOfSquares(out, x);
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step) {
        enter();
        adamw.update(params, master, grads, m, v, step, null);
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step,
                      Buffer gradScale) {
        enter();
        adamw.update(params, master, grads, m, v, step, Objects.requireNonNull(gradScale, "gradScale"));
    }

    @Override
    public void gradientClip(Buffer out, Buffer sumOfSquares, float maxNorm) {
        enter();
        adamw.gradientClip(out, sumOfSquares, maxNorm);
    }

    /** Waits for queued work, then frees every buffer, the kernels, cuBLASLt and the stream. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        RuntimeException failure = null;
        try {
            enter();
            if (stream != null) {
                Driver.streamSynchronize(stream);
            }
        } catch (RuntimeException e) {
            failure = e;  // still free what we can
        }
        closed = true;
        for (CudaBuffer b : new ArrayList<>(allocations)) {
            failure = attempt(() -> Driver.memFree(b.pointer()), failure);
        }
        allocations.clear();
        if (gemm != null) {
            failure = attempt(gemm::close, failure);
        }
        if (kernels != null) {
            failure = attempt(kernels::close, failure);
        }
        if (scratch != null) {
            failure = attempt(scratch::close, failure);
        }
        if (staging != null) {
            failure = attempt(staging::close, failure);
        }
        if (copies != null) {
            failure = attempt(copies::close, failure);
        }
        if (workspace != 0) {
            failure = attempt(() -> Driver.memFree(workspace), failure);
        }
        if (errorFlag != 0) {
            failure = attempt(() -> Driver.memFree(errorFlag), failure);
        }
        if (stream != null) {
            failure = attempt(() -> Driver.streamDestroy(stream), failure);
        }
        failure = attempt(() -> Driver.primaryContextRelease(device), failure);
        arena.close();
        if (failure != null) {
            throw failure;
        }
    }

    private static RuntimeException attempt(Runnable step, RuntimeException failure) {
        try {
            step.run();
        } catch (RuntimeException e) {
            if (failure == null) {
                return e;
            }
            failure.addSuppressed(e);
        }
        return failure;
    }

    @Override
    public String toString() {
        return description;
    }
}
