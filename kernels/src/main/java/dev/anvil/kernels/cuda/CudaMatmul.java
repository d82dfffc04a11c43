package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;

/**
 * The linear layer {@code out = inp · weightᵀ + bias} and its gradients, as cuBLASLt GEMMs
 * ({@link CublasLtGemm}) on row-major tensors seen as column-major ones.
 */
final class CudaMatmul {

    private final OpContext ctx;
    private final CublasLtGemm gemm;
    private final CudaColumnSums sums;

    CudaMatmul(OpContext ctx, CublasLtGemm gemm, CudaColumnSums sums) {
        this.ctx = ctx;
        this.gemm = gemm;
        this.sums = sums;
    }

    void forward(Buffer out, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc) {
        DType dt = ctx.floatType(out, "out");
        DType in = ctx.floatType(inp, "inp");
        CudaBuffer o = ctx.buf(out, dt, "out", (long) n * oc), x = ctx.buf(inp, in, "inp", (long) n * c);
        CudaBuffer w = ctx.buf(weight, in, "weight", (long) oc * c);
        CudaBuffer bb = bias == null ? null : ctx.buf(bias, dt, "bias", oc);
        if (n == 0 || oc == 0) {
            return;
        }
        // Column-major: outᵀ[oc×n] = W[c×oc]ᵀ · inpᵀ[c×n], the bias broadcast along outᵀ's columns.
        gemm.gemm(true, false, oc, n, c, w, x, o, bb, false);
    }

    void backward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                  int n, int c, int oc) {
        DType dt = ctx.floatType(dout, "dout");
        CudaBuffer g = ctx.buf(dout, dt, "dout", (long) n * oc), x = ctx.buf(inp, dt, "inp", (long) n * c);
        CudaBuffer w = ctx.buf(weight, dt, "weight", (long) oc * c);
        CudaBuffer dw = ctx.buf(dweight, ctx.floatType(dweight, "dweight"), "dweight", (long) oc * c);
        CudaBuffer dx = dinp == null ? null : ctx.buf(dinp, ctx.floatType(dinp, "dinp"), "dinp", (long) n * c);
        CudaBuffer db = dbias == null ? null : ctx.buf(dbias, ctx.floatType(dbias, "dbias"), "dbias", oc);
        if (n == 0 || oc == 0 || c == 0) {
            return;
        }
        if (dx != null) {
            // dinpᵀ[c×n] += W[c×oc] · doutᵀ[oc×n]
            gemm.gemm(false, false, c, n, oc, w, g, dx, null, true);
        }
        // dWᵀ[c×oc] += inpᵀ[c×n] · (doutᵀ[oc×n])ᵀ
        gemm.gemm(false, true, c, oc, n, x, g, dw, null, true);
        if (db != null) {
            sums.accumulate(db, g, n, oc);
        }
    }
}
