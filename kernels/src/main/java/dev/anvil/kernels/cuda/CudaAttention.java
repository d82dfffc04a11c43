package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import dev.anvil.kernels.cuda.driver.Driver;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Causal multi-head self-attention, flash style, forward and backward: on tensor cores
 * ({@code attention_tc.cu}) for BF16 tensors of head size 64 or 128 unless told otherwise, on CUDA
 * cores ({@code attention.cu}, the FMA path) for the rest. Both save the same log-sum-exp and share
 * the backward pass's {@code delta} kernel, so a forward of one path and a backward of the other agree.
 */
final class CudaAttention {

    /** The largest head size the attention kernels are instantiated for. */
    static final int MAX_HEAD_SIZE = 128;
    private static final int[] HEAD_SIZES = {32, 64, 128};
    private static final String FORWARD = "attention_forward", BACKWARD_KV = "attention_backward_kv",
            BACKWARD_Q = "attention_backward_q", DELTA = "attention_backward_delta";
    /** Head sizes of the tensor-core kernels, and their names ({@code <name>_hs<size>}). */
    private static final int[] TC_HEAD_SIZES = {64, 128};
    private static final String TC_FORWARD = "attention_tc_forward", TC_BACKWARD_KV = "attention_tc_backward_kv",
            TC_BACKWARD_Q = "attention_tc_backward_q";
    private static final int TC_THREADS = 128;
    /** Rows per tile of the tensor-core forward and dQ kernels (query rows) and dK/dV kernel (key rows). */
    private static final int TC_TILE = 64;
    static final List<String> ENTRY_POINTS = entryPoints();
    /** Each tensor-core kernel's dynamic shared memory in bytes, published by the module as {@code <entry>_smem}. */
    static final List<String> CONSTANTS = tcEntryPoints().stream().map(n -> n + "_smem").toList();

    /** A tensor-core kernel and its dynamic shared memory. */
    private record TcKernel(MemorySegment function, int sharedBytes) {
    }

    private final OpContext ctx;
    private final CudaKernels.Typed delta;
    private final CudaKernels.Typed[] forward, backwardKv, backwardQ;
    /** Per entry of {@link #TC_HEAD_SIZES}: forward, dK/dV, dQ; {@code null} where the tensor cores are not used. */
    private final TcKernel[][] tc;

    /**
     * @param kernels which attention kernels to prefer; tensor-core kernels that need more shared
     *                memory than the GPU lets a block have are not used (the FMA ones are)
     */
    CudaAttention(OpContext ctx, AttentionKernels kernels, MemorySegment stream) {
        this.ctx = ctx;
        delta = ctx.kernels.typed(DELTA);
        forward = perHeadSize(ctx.kernels, FORWARD);
        backwardKv = perHeadSize(ctx.kernels, BACKWARD_KV);
        backwardQ = perHeadSize(ctx.kernels, BACKWARD_Q);
        tc = kernels == AttentionKernels.TC ? tcKernels(ctx, stream) : null;
    }

    /** The tensor-core kernels with their shared memory opted in to, or {@code null} if the GPU cannot give it. */
    private static TcKernel[][] tcKernels(OpContext ctx, MemorySegment stream) {
        TcKernel[][] kernels = new TcKernel[TC_HEAD_SIZES.length][];
        for (int i = 0; i < TC_HEAD_SIZES.length; i++) {
            String[] names = tcNames(TC_HEAD_SIZES[i]);
            kernels[i] = new TcKernel[names.length];
            for (int k = 0; k < names.length; k++) {
                MemorySegment f = ctx.kernels.function(names[k]);
                int bytes = ctx.kernels.constant(names[k] + "_smem", stream);
                if (bytes > ctx.maxSharedBytes) {
                    return null;
                }
                // Above 48 KiB a kernel gets dynamic shared memory only once it opts in.
                Driver.funcSetAttribute(f, Driver.FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
                kernels[i][k] = new TcKernel(f, bytes);
            }
        }
        return kernels;
    }

    /** Whether the tensor-core kernels are in use (where the shapes let them). */
    boolean tensorCores() {
        return tc != null;
    }

    private static String[] tcNames(int hs) {
        return new String[] {TC_FORWARD + "_hs" + hs, TC_BACKWARD_KV + "_hs" + hs, TC_BACKWARD_Q + "_hs" + hs};
    }

    private static List<String> tcEntryPoints() {
        List<String> names = new ArrayList<>();
        for (int hs : TC_HEAD_SIZES) {
            names.addAll(List.of(tcNames(hs)));
        }
        return names;
    }

    /** {@code <name>_<f32|bf16>_hs<bound>} for every head-size bound. */
    private static List<String> entryPoints() {
        List<String> names = new ArrayList<>(CudaKernels.names(List.of(DELTA), List.of()));
        for (String t : List.of("f32", "bf16")) {
            for (int hs : HEAD_SIZES) {
                for (String n : List.of(FORWARD, BACKWARD_KV, BACKWARD_Q)) {
                    names.add(n + "_" + t + "_hs" + hs);
                }
            }
        }
        names.addAll(tcEntryPoints());
        return List.copyOf(names);
    }

    private static CudaKernels.Typed[] perHeadSize(CudaKernels kernels, String name) {
        CudaKernels.Typed[] typed = new CudaKernels.Typed[HEAD_SIZES.length];
        for (int i = 0; i < HEAD_SIZES.length; i++) {
            typed[i] = new CudaKernels.Typed(kernels.function(name + "_f32_hs" + HEAD_SIZES[i]),
                    kernels.function(name + "_bf16_hs" + HEAD_SIZES[i]));
        }
        return typed;
    }

    void forward(Buffer out, Buffer lse, Buffer qkv, int b, int t, int c, int nh) {
        int hs = headSize(c, nh);
        DType dt = ctx.floatType(out, "out");
        long btc = (long) b * t * c;
        CudaBuffer o = ctx.buf(out, dt, "out", btc), l = ctx.buf(lse, DType.FP32, "lse", (long) b * nh * t);
        CudaBuffer x = ctx.buf(qkv, dt, "qkv", 3 * btc);
        if (b == 0 || t == 0) {
            return;
        }
        int path = tcIndex(dt, hs, c, o, x);
        if (path >= 0) {
            TcKernel k = tc[path][0];
            ctx.launch(k.function).ptr(o).ptr(l).ptr(x).i32(t).i32(c).i32(nh)
                    .launch(tiles(t), b * nh, TC_THREADS, k.sharedBytes);
            return;
        }
        int tile = tile(hs);
        ctx.launch(forward[headIndex(hs)].of(dt)).ptr(o).ptr(l).ptr(x).i32(t).i32(c).i32(nh)
                .launch((t + tile - 1) / tile, b * nh, tile);
    }

    void backward(Buffer dqkv, Buffer dout, Buffer qkv, Buffer out, Buffer lse, int b, int t, int c, int nh) {
        int hs = headSize(c, nh);
        DType dt = ctx.floatType(dqkv, "dqkv");
        long btc = (long) b * t * c, rows = (long) b * nh * t;
        CudaBuffer dx = ctx.buf(dqkv, dt, "dqkv", 3 * btc), g = ctx.buf(dout, dt, "dout", btc);
        CudaBuffer x = ctx.buf(qkv, dt, "qkv", 3 * btc), o = ctx.buf(out, dt, "out", btc);
        CudaBuffer l = ctx.buf(lse, DType.FP32, "lse", rows);
        if (rows == 0) {
            return;
        }
        long deltas = ctx.scratch.get(rows * Float.BYTES);
        // One warp per row.
        ctx.launch(delta.of(dt)).ptr(deltas).ptr(g).ptr(o).i32(b).i32(t).i32(c).i32(nh)
                .launch(ctx.grid(rows * 32), OpContext.THREADS);
        int path = tcIndex(dt, hs, c, dx, g, x, o);
        if (path >= 0) {
            for (TcKernel k : new TcKernel[] {tc[path][1], tc[path][2]}) {
                ctx.launch(k.function).ptr(dx).ptr(g).ptr(x).ptr(l).ptr(deltas).i32(t).i32(c).i32(nh)
                        .launch(tiles(t), b * nh, TC_THREADS, k.sharedBytes);
            }
            return;
        }
        int tile = tile(hs), tiles = (t + tile - 1) / tile, k = headIndex(hs);
        ctx.launch(backwardKv[k].of(dt)).ptr(dx).ptr(g).ptr(x).ptr(l).ptr(deltas)
                .i32(t).i32(c).i32(nh).launch(tiles, b * nh, tile);
        ctx.launch(backwardQ[k].of(dt)).ptr(dx).ptr(g).ptr(x).ptr(l).ptr(deltas)
                .i32(t).i32(c).i32(nh).launch(tiles, b * nh, tile);
    }

    /**
     * Which tensor-core kernels take this call ({@link #TC_HEAD_SIZES} index), or -1 for the FMA
     * path: they need BF16, head size 64 or 128, and rows of 16-byte chunks at 16-byte aligned
     * addresses, since they move tiles in 16-byte {@code cp.async} copies.
     */
    private int tcIndex(DType dt, int hs, int c, CudaBuffer... buffers) {
        if (tc == null || dt != DType.BF16 || c % 8 != 0) {
            return -1;
        }
        for (CudaBuffer b : buffers) {
            if (b.pointer() % 16 != 0) {
                return -1;
            }
        }
        for (int i = 0; i < TC_HEAD_SIZES.length; i++) {
            if (TC_HEAD_SIZES[i] == hs) {
                return i;
            }
        }
        return -1;
    }

    private static int tiles(int t) {
        return (t + TC_TILE - 1) / TC_TILE;
    }

    private static int headSize(int c, int nh) {
        if (nh <= 0 || c % nh != 0) {
            throw new IllegalArgumentException("channels " + c + " do not split into " + nh + " heads");
        }
        int hs = c / nh;
        if (hs > MAX_HEAD_SIZE) {
            throw new IllegalArgumentException("head size " + hs + " exceeds the " + MAX_HEAD_SIZE
                    + " the CUDA attention kernels are built for");
        }
        return hs;
    }

    /** Rows per tile of the FMA kernels for head size {@code hs}: their block size (see {@code AttnTile}). */
    private static int tile(int hs) {
        return HEAD_SIZES[headIndex(hs)] <= 64 ? 32 : 16;
    }

    private static int headIndex(int hs) {
        for (int i = 0; i < HEAD_SIZES.length; i++) {
            if (hs <= HEAD_SIZES[i]) {
                return i;
            }
        }
        throw new IllegalArgumentException("head size " + hs + " exceeds the " + MAX_HEAD_SIZE
                + " the CUDA attention kernels are built for");
    }
}
