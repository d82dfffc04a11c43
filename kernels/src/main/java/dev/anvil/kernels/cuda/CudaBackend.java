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
import java.util.Optional;
import java.util.Set;

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

    private static final int THREADS = 256;
    private static final int SOFTMAX_THREADS = 512;
    /** Rows summed per block in the two-stage column sums; enough blocks to fill the GPU. */
    private static final int MAX_CHUNKS = 128;
    private static final int ERR_TOKEN = 1, ERR_TARGET = 2;

    private final int device;
    private final String description;
    private final int smCount;
    private final MemorySegment context;
    private final Arena arena = Arena.ofShared();
    private final Set<CudaBuffer> allocations = new LinkedHashSet<>();
    private MemorySegment stream;
    private KernelLauncher launcher;
    private CudaKernels kernels;
    private CudaMatmul matmul;
    private DeviceScratch scratch;
    private HostStaging staging;
    private long workspace;
    private long errorFlag;
    private MemorySegment errorHost;
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
            description = String.format("cuda (%s, sm_%d%d, %d SMs, %.1f GiB, driver %d.%d%s)", name, major, minor,
                    smCount, total / (double) (1L << 30), version / 1000, version % 1000 / 10,
                    options.tf32() ? ", tf32 matmuls" : "");
            // Non-blocking: other libraries' work on the legacy default stream never stalls ours.
            stream = Driver.streamCreate(Driver.STREAM_NON_BLOCKING);
            launcher = new KernelLauncher(arena, stream);
            kernels = new CudaKernels(arena);
            scratch = new DeviceScratch(stream);
            staging = new HostStaging(stream);
            workspace = Driver.memAlloc(CudaMatmul.WORKSPACE_BYTES);
            matmul = new CudaMatmul(arena, stream, workspace, options.tf32());
            errorFlag = Driver.memAlloc(16);
            Driver.memsetD32Async(errorFlag, 0, 4, stream);
            errorHost = arena.allocate(16, 16);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
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
            launcher.begin(kernels.convertF32ToBf16).ptr(d).ptr(s).size(s.length()).launch(grid(s.length()), THREADS);
        } else if (d.dtype() == DType.FP32 && s.dtype() == DType.BF16) {
            launcher.begin(kernels.convertBf16ToF32).ptr(d).ptr(s).size(s.length()).launch(grid(s.length()), THREADS);
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

    /** Blocks for a grid-stride kernel over {@code n} elements: enough to fill the GPU, at least one. */
    private int grid(long n) {
        long blocks = (n + THREADS - 1) / THREADS;
        return (int) Math.max(1, Math.min(blocks, 32L * smCount));
    }

    private CudaBuffer buf(Buffer b, DType dtype, String name, long need) {
        return CudaBuffer.of(this, b, dtype, name, need);
    }

    /** The storage type of an op, taken from its output: FP32 or BF16. */
    private DType floatType(Buffer b, String name) {
        DType t = CudaBuffer.of(this, b, name).dtype();
        if (t == DType.INT32) {
            throw new IllegalArgumentException(name + " must be FP32 or BF16, is INT32");
        }
        return t;
    }

    // ---- transformer ops ----

    @Override
    public void encoderForward(Buffer out, Buffer tokens, Buffer wte, Buffer wpe, int b, int t, int c) {
        enter();
        DType dt = floatType(out, "out");
        long bt = (long) b * t;
        CudaBuffer te = buf(wte, dt, "wte", c);
        launcher.begin(kernels.encoderForward.of(dt)).ptr(buf(out, dt, "out", bt * c))
                .ptr(buf(tokens, DType.INT32, "tokens", bt)).ptr(te).ptr(buf(wpe, dt, "wpe", (long) t * c))
                .i32(b).i32(t).i32(c).i32((int) Math.min(Integer.MAX_VALUE, te.length() / c)).ptr(errorFlag)
                .launch(grid(bt * c), THREADS);
    }

    /**
     * Deterministic, with fp32 sums: {@code dwpe} sums the batch per (position, channel);
     * {@code dwte} first sorts the positions by token, stably, then sums each (token, channel) in
     * order of position and rounds once (see encoder.cu).
     */
    @Override
    public void encoderBackward(Buffer dwte, Buffer dwpe, Buffer dout, Buffer tokens, int b, int t, int c) {
        enter();
        DType dt = floatType(dwte, "dwte");
        long bt = (long) b * t;
        CudaBuffer dte = buf(dwte, dt, "dwte", c), dpe = buf(dwpe, dt, "dwpe", (long) t * c);
        CudaBuffer g = buf(dout, dt, "dout", bt * c), tok = buf(tokens, DType.INT32, "tokens", bt);
        if (bt == 0 || c == 0) {
            return;
        }
        int n = Math.toIntExact(bt);
        launcher.begin(kernels.encoderBackwardWpe.of(dt)).ptr(dpe).ptr(g).i32(b).i32(t).i32(c)
                .launch(grid((long) t * c), THREADS);
        int vocab = (int) Math.min(Integer.MAX_VALUE - 1, dte.length() / c);
        long order = scratch.get(2 * bt * Integer.BYTES), sorted = order + bt * Integer.BYTES;
        int orderThreads = CudaKernels.ENCODER_ORDER_THREADS;
        launcher.begin(kernels.encoderBackwardWteOrder).ptr(order).ptr(sorted).ptr(tok).i32(n).i32(vocab)
                .ptr(errorFlag).launch((n + orderThreads - 1) / orderThreads, orderThreads);
        // Enough blocks along the ranks to fill the GPU; each strides over the runs of equal tokens.
        int rankBlocks = Math.min(n, 16 * smCount);
        launcher.begin(kernels.encoderBackwardWte.of(dt)).ptr(dte).ptr(g).ptr(order).ptr(sorted).i32(n).i32(c)
                .i32(vocab).launch(columnBlocks(c), rankBlocks, THREADS);
    }

    @Override
    public void layerNormForward(Buffer out, Buffer mean, Buffer rstd, Buffer inp, Buffer weight, Buffer bias,
                                 int n, int c) {
        enter();
        DType dt = floatType(out, "out");
        long nc = (long) n * c;
        launcher.begin(kernels.layernormForward.of(dt)).ptr(buf(out, dt, "out", nc))
                .ptr(buf(mean, DType.FP32, "mean", n)).ptr(buf(rstd, DType.FP32, "rstd", n))
                .ptr(buf(inp, dt, "inp", nc)).ptr(buf(weight, dt, "weight", c)).ptr(buf(bias, dt, "bias", c))
                .i32(n).i32(c).launch(rowBlocks(n), THREADS);
    }

    @Override
    public void layerNormBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp,
                                  Buffer weight, Buffer mean, Buffer rstd, int n, int c) {
        enter();
        DType dt = floatType(dinp, "dinp");
        long nc = (long) n * c;
        CudaBuffer dx = buf(dinp, dt, "dinp", nc), dw = buf(dweight, dt, "dweight", c), db = buf(dbias, dt, "dbias", c);
        CudaBuffer g = buf(dout, dt, "dout", nc), x = buf(inp, dt, "inp", nc), w = buf(weight, dt, "weight", c);
        CudaBuffer mu = buf(mean, DType.FP32, "mean", n), rs = buf(rstd, DType.FP32, "rstd", n);
        if (n == 0) {
            return;
        }
        launcher.begin(kernels.layernormBackwardInput.of(dt)).ptr(dx).ptr(g).ptr(x).ptr(w).ptr(mu).ptr(rs)
                .i32(n).i32(c).launch(rowBlocks(n), THREADS);
        int rowsPerChunk = rowsPerChunk(n);
        int chunks = (n + rowsPerChunk - 1) / rowsPerChunk;
        long partials = scratch.get((long) chunks * 2 * c * Float.BYTES);
        launcher.begin(kernels.layernormBackwardParams.of(dt)).ptr(partials).ptr(g).ptr(x).ptr(mu).ptr(rs)
                .i32(n).i32(c).i32(rowsPerChunk).launch(columnBlocks(c), chunks, THREADS);
        addPartialSums(dw, partials, chunks, 2 * c, c);
        addPartialSums(db, partials + (long) c * Float.BYTES, chunks, 2 * c, c);
    }

    /** Blocks for one warp per row. */
    private static int rowBlocks(int rows) {
        return Math.max(1, (rows + THREADS / 32 - 1) / (THREADS / 32));
    }

    private static int columnBlocks(int columns) {
        return Math.max(1, (columns + THREADS - 1) / THREADS);
    }

    private static int rowsPerChunk(int rows) {
        return (rows + MAX_CHUNKS - 1) / MAX_CHUNKS;
    }

    /** {@code out[c] += Σ_k partials[k·stride + c]} over {@code chunks} fp32 rows. */
    private void addPartialSums(CudaBuffer out, long partials, int chunks, int stride, int c) {
        launcher.begin(kernels.addPartialSums.of(out.dtype())).ptr(out).ptr(partials).i32(chunks).i32(stride).i32(c)
                .launch(grid(c), THREADS);
    }

    @Override
    public void matmulForward(Buffer out, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc) {
        enter();
        DType dt = floatType(out, "out");
        DType in = floatType(inp, "inp");
        CudaBuffer o = buf(out, dt, "out", (long) n * oc), x = buf(inp, in, "inp", (long) n * c);
        CudaBuffer w = buf(weight, in, "weight", (long) oc * c);
        CudaBuffer bb = bias == null ? null : buf(bias, dt, "bias", oc);
        if (n == 0 || oc == 0) {
            return;
        }
        // Column-major: outᵀ[oc×n] = W[c×oc]ᵀ · inpᵀ[c×n], the bias broadcast along outᵀ's columns.
        matmul.gemm(true, false, oc, n, c, w, x, o, bb, false);
    }

    @Override
    public void matmulBackward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                               int n, int c, int oc) {
        enter();
        DType dt = floatType(dout, "dout");
        CudaBuffer g = buf(dout, dt, "dout", (long) n * oc), x = buf(inp, dt, "inp", (long) n * c);
        CudaBuffer w = buf(weight, dt, "weight", (long) oc * c);
        CudaBuffer dw = buf(dweight, floatType(dweight, "dweight"), "dweight", (long) oc * c);
        CudaBuffer dx = dinp == null ? null : buf(dinp, floatType(dinp, "dinp"), "dinp", (long) n * c);
        CudaBuffer db = dbias == null ? null : buf(dbias, floatType(dbias, "dbias"), "dbias", oc);
        if (n == 0 || oc == 0 || c == 0) {
            return;
        }
        if (dx != null) {
            // dinpᵀ[c×n] += W[c×oc] · doutᵀ[oc×n]
            matmul.gemm(false, false, c, n, oc, w, g, dx, null, true);
        }
        // dWᵀ[c×oc] += inpᵀ[c×n] · (doutᵀ[oc×n])ᵀ
        matmul.gemm(false, true, c, oc, n, x, g, dw, null, true);
        if (db != null) {
            int rowsPerChunk = rowsPerChunk(n);
            int chunks = (n + rowsPerChunk - 1) / rowsPerChunk;
            long partials = scratch.get((long) chunks * oc * Float.BYTES);
            launcher.begin(kernels.columnPartialSums.of(dt)).ptr(partials).ptr(g).i32(n).i32(oc).i32(rowsPerChunk)
                    .launch(columnBlocks(oc), chunks, THREADS);
            addPartialSums(db, partials, chunks, oc, oc);
        }
    }

    @Override
    public void attentionForward(Buffer out, Buffer lse, Buffer qkv, int b, int t, int c, int nh) {
        enter();
        int hs = headSize(c, nh);
        DType dt = floatType(out, "out");
        long btc = (long) b * t * c;
        CudaBuffer o = buf(out, dt, "out", btc), l = buf(lse, DType.FP32, "lse", (long) b * nh * t);
        CudaBuffer x = buf(qkv, dt, "qkv", 3 * btc);
        if (b == 0 || t == 0) {
            return;
        }
        int tile = CudaKernels.attentionTile(hs);
        launcher.begin(kernels.attentionForward(dt, hs)).ptr(o).ptr(l).ptr(x).i32(t).i32(c).i32(nh)
                .launch((t + tile - 1) / tile, b * nh, tile);
    }

    @Override
    public void attentionBackward(Buffer dqkv, Buffer dout, Buffer qkv, Buffer out, Buffer lse,
                                  int b, int t, int c, int nh) {
        enter();
        int hs = headSize(c, nh);
        DType dt = floatType(dqkv, "dqkv");
        long btc = (long) b * t * c, rows = (long) b * nh * t;
        CudaBuffer dx = buf(dqkv, dt, "dqkv", 3 * btc), g = buf(dout, dt, "dout", btc);
        CudaBuffer x = buf(qkv, dt, "qkv", 3 * btc), o = buf(out, dt, "out", btc);
        CudaBuffer l = buf(lse, DType.FP32, "lse", rows);
        if (rows == 0) {
            return;
        }
        long delta = scratch.get(rows * Float.BYTES);
        launcher.begin(kernels.attentionBackwardDelta.of(dt)).ptr(delta).ptr(g).ptr(o).i32(b).i32(t).i32(c).i32(nh)
                .launch(grid(rows), THREADS);
        int tile = CudaKernels.attentionTile(hs);
        int tiles = (t + tile - 1) / tile;
        launcher.begin(kernels.attentionBackwardKv(dt, hs)).ptr(dx).ptr(g).ptr(x).ptr(l).ptr(delta)
                .i32(t).i32(c).i32(nh).launch(tiles, b * nh, tile);
        launcher.begin(kernels.attentionBackwardQ(dt, hs)).ptr(dx).ptr(g).ptr(x).ptr(l).ptr(delta)
                .i32(t).i32(c).i32(nh).launch(tiles, b * nh, tile);
    }

    private static int headSize(int c, int nh) {
        if (nh <= 0 || c % nh != 0) {
            throw new IllegalArgumentException("channels " + c + " do not split into " + nh + " heads");
        }
        int hs = c / nh;
        if (hs > CudaKernels.MAX_HEAD_SIZE) {
            throw new IllegalArgumentException("head size " + hs + " exceeds the " + CudaKernels.MAX_HEAD_SIZE
                    + " the CUDA attention kernels are built for");
        }
        return hs;
    }

    @Override
    public void geluForward(Buffer out, Buffer inp, int n) {
        enter();
        DType dt = floatType(out, "out");
        launcher.begin(kernels.geluForward.of(dt)).ptr(buf(out, dt, "out", n)).ptr(buf(inp, dt, "inp", n)).i32(n)
                .launch(grid(n), THREADS);
    }

    @Override
    public void geluBackward(Buffer dinp, Buffer inp, Buffer dout, int n) {
        enter();
        DType dt = floatType(dinp, "dinp");
        launcher.begin(kernels.geluBackward.of(dt)).ptr(buf(dinp, dt, "dinp", n)).ptr(buf(inp, dt, "inp", n))
                .ptr(buf(dout, dt, "dout", n)).i32(n).launch(grid(n), THREADS);
    }

    @Override
    public void residualForward(Buffer out, Buffer a, Buffer b, int n) {
        enter();
        DType dt = floatType(out, "out");
        launcher.begin(kernels.residualForward.of(dt)).ptr(buf(out, dt, "out", n)).ptr(buf(a, dt, "a", n))
                .ptr(buf(b, dt, "b", n)).i32(n).launch(grid(n), THREADS);
    }

    @Override
    public void residualBackward(Buffer da, Buffer db, Buffer dout, int n) {
        enter();
        DType dt = floatType(da, "da");
        launcher.begin(kernels.residualBackward.of(dt)).ptr(buf(da, dt, "da", n)).ptr(buf(db, dt, "db", n))
                .ptr(buf(dout, dt, "dout", n)).i32(n).launch(grid(n), THREADS);
    }

    @Override
    public void softmaxCrossEntropy(Buffer losses, Buffer logits, Buffer targets, int n, int v, int vp,
                                    float gradScale) {
        enter();
        if (v <= 0 || v > vp) {
            throw new IllegalArgumentException("vocabulary " + v + " must lie in [1, padded " + vp + "]");
        }
        DType dt = floatType(logits, "logits");
        CudaBuffer l = buf(losses, DType.FP32, "losses", n), z = buf(logits, dt, "logits", (long) n * vp);
        CudaBuffer tg = buf(targets, DType.INT32, "targets", n);
        if (n == 0) {
            return;
        }
        launcher.begin(kernels.softmaxCrossEntropy.of(dt)).ptr(l).ptr(z).ptr(tg).i32(v).i32(vp).f32(gradScale)
                .ptr(errorFlag).launch(n, SOFTMAX_THREADS);
    }

    // ---- optimizer ops ----

    @Override
    public void sumOfSquares(Buffer out, Buffer x) {
        enter();
        CudaBuffer o = buf(out, DType.FP32, "out", 1);
        DType dt = floatType(x, "x");
        CudaBuffer in = CudaBuffer.of(this, x, "x");
        int blocks = Math.min(grid(in.length()), 1024);
        long partials = scratch.get((long) blocks * Double.BYTES);
        launcher.begin(kernels.sumSquaresPartial.of(dt)).ptr(partials).ptr(in).size(in.length())
                .launch(blocks, THREADS);
        launcher.begin(kernels.sumSquaresFinal).ptr(o).ptr(partials).i32(blocks).launch(1, THREADS);
    }

    @Override
    public void adamw(Buffer params, Buffer master, Buffer grads, Buffer m, Buffer v, AdamWStep step) {
        enter();
        DType pt = floatType(params, "params");
        long n = params.length();
        CudaBuffer p = buf(params, pt, "params", n);
        CudaBuffer g = buf(grads, floatType(grads, "grads"), "grads", n);
        CudaBuffer mm = buf(m, DType.FP32, "m", n), vv = buf(v, DType.FP32, "v", n);
        MemorySegment kernel;
        long masterPointer = 0;
        if (pt == DType.FP32) {
            if (master != null) {
                throw new IllegalArgumentException("FP32 parameters are their own master weights; pass master = null");
            }
            if (g.dtype() != DType.FP32) {
                throw new IllegalArgumentException("FP32 parameters need FP32 gradients, got " + g.dtype());
            }
            kernel = kernels.adamwF32;
        } else {
            if (master == null) {
                throw new IllegalArgumentException("BF16 parameters need FP32 master weights");
            }
            masterPointer = buf(master, DType.FP32, "master", n).pointer();
            kernel = g.dtype() == DType.BF16 ? kernels.adamwBf16 : kernels.adamwBf16F32Grads;
        }
        // PyTorch computes the bias corrections in double precision, then steps in fp32.
        double bc1 = 1.0 - Math.pow(step.beta1(), step.step());
        double bc2 = 1.0 - Math.pow(step.beta2(), step.step());
        launcher.begin(kernel).ptr(p).ptr(masterPointer).ptr(g).ptr(mm).ptr(vv).size(n)
                .f32(step.beta1()).f32(step.beta2()).f32(step.eps()).f32(1f - step.lr() * step.weightDecay())
                .f32((float) (step.lr() / bc1)).f32((float) Math.sqrt(bc2)).f32(step.gradScale())
                .launch(grid(n), THREADS);
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
        if (matmul != null) {
            failure = attempt(matmul::close, failure);
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
