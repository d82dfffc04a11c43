package dev.anvil.kernels.cuda;

import dev.anvil.kernels.Buffer;
import dev.anvil.kernels.DType;
import dev.anvil.kernels.cuda.CublasLtGemm.Epilogue;
import dev.anvil.kernels.cuda.driver.CublasLt;

/**
 * The linear layer {@code out = inp · weightᵀ + bias} and its gradients, as cuBLASLt GEMMs
 * ({@link CublasLtGemm}) on row-major tensors seen as column-major ones, with cuBLASLt's epilogues
 * doing what would otherwise be passes of their own: the bias, the MLP's GELU (forward, keeping its
 * input) and GELU derivative (backward), and the bias gradient of a GEMM whose parameter gradients
 * are overwritten. Where cuBLASLt offers no algorithm for an epilogue the ops run unfused.
 */
final class CudaMatmul {

    private final OpContext ctx;
    private final CublasLtGemm gemm;
    private final CudaColumnSums sums;
    private final CudaGelu gelu;

    CudaMatmul(OpContext ctx, CublasLtGemm gemm, CudaColumnSums sums, CudaGelu gelu) {
        this.ctx = ctx;
        this.gemm = gemm;
        this.sums = sums;
        this.gelu = gelu;
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
        gemm.gemm(true, false, oc, n, c, w, x, o, false, Epilogue.bias(bb));
    }

    /** {@code preact = inp·Wᵀ + bias}, {@code out = gelu(preact)}: one GEMM with the GELU_AUX_BIAS epilogue. */
    void geluForward(Buffer out, Buffer preact, Buffer inp, Buffer weight, Buffer bias, int n, int c, int oc) {
        DType dt = ctx.floatType(out, "out");
        CudaBuffer o = ctx.buf(out, dt, "out", (long) n * oc), pre = ctx.buf(preact, dt, "preact", (long) n * oc);
        CudaBuffer x = ctx.buf(inp, dt, "inp", (long) n * c), w = ctx.buf(weight, dt, "weight", (long) oc * c);
        CudaBuffer bb = ctx.buf(bias, dt, "bias", oc);
        if (n == 0 || oc == 0) {
            return;
        }
        if (!gemm.gemm(true, false, oc, n, c, w, x, o, false,
                new Epilogue(CublasLt.EPILOGUE_GELU_AUX_BIAS, bb, pre))) {
            forward(preact, inp, weight, bias, n, c, oc);
            gelu.forward(out, preact, Math.multiplyExact(n, oc));
        }
    }

    void backward(Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp, Buffer weight,
                  int n, int c, int oc, boolean accumulate) {
        DType dt = ctx.floatType(dout, "dout");
        CudaBuffer g = ctx.buf(dout, dt, "dout", (long) n * oc), x = ctx.buf(inp, dt, "inp", (long) n * c);
        CudaBuffer w = ctx.buf(weight, dt, "weight", (long) oc * c);
        CudaBuffer dx = dinp == null ? null : ctx.buf(dinp, ctx.floatType(dinp, "dinp"), "dinp", (long) n * c);
        if (dx != null && n > 0 && oc > 0 && c > 0) {
            // dinpᵀ[c×n] += W[c×oc] · doutᵀ[oc×n]
            gemm.gemm(false, false, c, n, oc, w, g, dx, true, Epilogue.NONE);
        }
        weightGradients(dweight, dbias, g, x, n, c, oc, accumulate);
    }

    /**
     * Backward of the down-projection {@code out = gelu(preact)·Wᵀ + bias}: {@code dpreact} written as
     * {@code (dout·W) ∘ gelu'(preact)} by one GEMM with the DGELU epilogue, then the weight gradients.
     * The bias gradient of the up-projection, {@code Σ dpreact}, comes from that layer's own weight
     * GEMM (BGRADB), so DGELU_BGRAD would save no pass.
     */
    void geluBackward(Buffer dpreact, Buffer dinp, Buffer dweight, Buffer dbias, Buffer dout, Buffer inp,
                      Buffer weight, Buffer preact, int n, int c, int oc, boolean accumulate) {
        DType dt = ctx.floatType(dout, "dout");
        CudaBuffer dpre = ctx.buf(dpreact, dt, "dpreact", (long) n * c), pre = ctx.buf(preact, dt, "preact", (long) n * c);
        CudaBuffer g = ctx.buf(dout, dt, "dout", (long) n * oc), x = ctx.buf(inp, dt, "inp", (long) n * c);
        CudaBuffer w = ctx.buf(weight, dt, "weight", (long) oc * c);
        CudaBuffer scratch = ctx.buf(dinp, dt, "dinp", (long) n * c);
        if (n == 0 || c == 0) {
            return;
        }
        if (oc == 0 || !gemm.gemm(false, false, c, n, oc, w, g, dpre, false, new Epilogue(CublasLt.EPILOGUE_DGELU, null, pre))) {
            ctx.backend.zero(scratch);
            if (oc > 0) {
                gemm.gemm(false, false, c, n, oc, w, g, scratch, true, Epilogue.NONE);
            }
            ctx.backend.zero(dpre);
            gelu.backward(dpre, pre, scratch, Math.multiplyExact(n, c));
        }
        weightGradients(dweight, dbias, g, x, n, c, oc, accumulate);
    }

    /**
     * {@code dWᵀ[c×oc] (+)= inpᵀ[c×n] · (doutᵀ[oc×n])ᵀ} with β = 0 when overwriting, and the bias
     * gradient: from the same GEMM (BGRADB, which writes) when overwriting, else summed into.
     */
    private void weightGradients(Buffer dweight, Buffer dbias, CudaBuffer g, CudaBuffer x, int n, int c, int oc,
                                 boolean accumulate) {
        CudaBuffer dw = dweight == null ? null : ctx.buf(dweight, ctx.floatType(dweight, "dweight"), "dweight", (long) oc * c);
        CudaBuffer db = dbias == null ? null : ctx.buf(dbias, ctx.floatType(dbias, "dbias"), "dbias", oc);
        if (oc == 0 || c == 0 || dw == null && db == null) {
            return;
        }
        if (n == 0) {
            if (!accumulate) {
                if (dw != null) {
                    ctx.backend.zero(dw);
                }
                if (db != null) {
                    ctx.backend.zero(db);
                }
            }
            return;
        }
        if (dw != null) {
            if (db != null && !accumulate && db.dtype() == dw.dtype()
                    && gemm.gemm(false, true, c, oc, n, x, g, dw, false, new Epilogue(CublasLt.EPILOGUE_BGRADB, db, null))) {
                return;
            }
            gemm.gemm(false, true, c, oc, n, x, g, dw, accumulate, Epilogue.NONE);
        }
        if (db != null) {
            if (!accumulate) {
                ctx.backend.zero(db);
            }
            sums.accumulate(db, g, n, oc);
        }
    }
}
