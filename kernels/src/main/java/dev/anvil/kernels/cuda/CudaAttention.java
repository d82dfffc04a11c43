package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

import java.util.ArrayList;
import java.util.List;

/** Causal multi-head self-attention, flash style, forward and backward ({@code attention.cu}). */
final class CudaAttention {

    /** The largest head size the attention kernels are instantiated for. */
    static final int MAX_HEAD_SIZE = 128;
    private static final int[] HEAD_SIZES = {32, 64, 128};
    private static final String FORWARD = "attention_forward", BACKWARD_KV = "attention_backward_kv",
            BACKWARD_Q = "attention_backward_q", DELTA = "attention_backward_delta";
    static final List<String> ENTRY_POINTS = entryPoints();

    private final OpContext ctx;
    private final CudaKernels.Typed delta;
    private final CudaKernels.Typed[] forward, backwardKv, backwardQ;

    CudaAttention(OpContext ctx) {
        this.ctx = ctx;
        delta = ctx.kernels.typed(DELTA);
        forward = perHeadSize(ctx.kernels, FORWARD);
        backwardKv = perHeadSize(ctx.kernels, BACKWARD_KV);
        backwardQ = perHeadSize(ctx.kernels, BACKWARD_Q);
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
        ctx.launch(delta.of(dt)).ptr(deltas).ptr(g).ptr(o).i32(b).i32(t).i32(c).i32(nh)
                .launch(ctx.grid(rows), OpContext.THREADS);
        int tile = tile(hs), tiles = (t + tile - 1) / tile, k = headIndex(hs);
        ctx.launch(backwardKv[k].of(dt)).ptr(dx).ptr(g).ptr(x).ptr(l).ptr(deltas)
                .i32(t).i32(c).i32(nh).launch(tiles, b * nh, tile);
        ctx.launch(backwardQ[k].of(dt)).ptr(dx).ptr(g).ptr(x).ptr(l).ptr(deltas)
                .i32(t).i32(c).i32(nh).launch(tiles, b * nh, tile);
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
