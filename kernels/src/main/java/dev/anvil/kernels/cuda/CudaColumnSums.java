package dev.anvil.kernels.cuda;

import java.util.List;

/**
 * Deterministic column sums in two stages ({@code reduce.cu}): blocks write per-chunk partial sums
 * to fp32 scratch, then one thread per column adds the chunks in a fixed order. The matmul's bias
 * gradient and LayerNorm's weight and bias gradients use them instead of atomics across rows.
 */
final class CudaColumnSums {

    private static final String PARTIAL = "column_partial_sums", ADD = "add_partial_sums";
    static final List<String> ENTRY_POINTS = CudaKernels.names(List.of(PARTIAL, ADD), List.of());

    private final OpContext ctx;
    private final CudaKernels.Typed partial, add;

    CudaColumnSums(OpContext ctx) {
        this.ctx = ctx;
        partial = ctx.kernels.typed(PARTIAL);
        add = ctx.kernels.typed(ADD);
    }

    /** {@code out[c] += Σ_rows x[r, c]} over an {@code [n, c]} matrix. */
    void accumulate(CudaBuffer out, CudaBuffer x, int n, int c) {
        int rowsPerChunk = OpContext.rowsPerChunk(n), chunks = OpContext.chunks(n);
        long partials = ctx.scratch.get((long) chunks * c * Float.BYTES);
        ctx.launch(partial.of(x.dtype())).ptr(partials).ptr(x).i32(n).i32(c).i32(rowsPerChunk)
                .launch(OpContext.columnBlocks(c), chunks, OpContext.THREADS);
        addPartials(out, partials, chunks, c, c);
    }

    /** {@code out[c] += Σ_k partials[k·stride + c]} over {@code chunks} fp32 rows. */
    void addPartials(CudaBuffer out, long partials, int chunks, int stride, int c) {
        ctx.launch(add.of(out.dtype())).ptr(out).ptr(partials).i32(chunks).i32(stride).i32(c)
                .launch(ctx.grid(c), OpContext.THREADS);
    }
}
