package dev.anvil.kernels.cuda;

import dev.anvil.kernels.DType;
import dev.anvil.kernels.cuda.driver.CublasLt;
import dev.anvil.kernels.cuda.driver.CudaException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Column-major GEMMs through cuBLASLt: {@code D = op(A)·op(B) + beta·D (+ bias)}. The first call of
 * each shape creates its descriptors and asks cuBLASLt's heuristic for the best algorithm; later
 * calls reuse them, so a step costs one {@code cublasLtMatmul} per GEMM.
 *
 * <p>Row-major tensors map onto column-major for free: a row-major {@code [R, C]} matrix is a
 * column-major {@code C × R} one with leading dimension {@code C}. {@code CudaBackend} uses that to
 * express its row-major products as column-major ones with swapped operands.
 */
final class CublasLtGemm implements AutoCloseable {

    /** Workspace cuBLASLt may use; 32 MiB lets it pick its fastest (split-K) algorithms on Hopper. */
    static final long WORKSPACE_BYTES = 32L << 20;

    private final MemorySegment handle;
    private final MemorySegment stream;
    private final MemorySegment preference;
    private final long workspace;
    private final int fp32Compute;
    private final Arena arena;
    private final MemorySegment one, zero, pointer;
    /** Plans by shape; empty where cuBLASLt has no algorithm (an epilogue it does not offer for these types). */
    private final Map<Shape, Optional<Plan>> plans = new HashMap<>();

    /**
     * What the GEMM does after the product: nothing ({@link #NONE}), or one of cuBLASLt's epilogues
     * with the vectors it reads or writes.
     *
     * @param kind a {@code CublasLt.EPILOGUE_*}
     * @param bias the bias ({@code BIAS}, {@code GELU_AUX_BIAS}: D's row count, D's type) or the bias
     *             gradient it writes ({@code BGRADB}: D's column count, D's type); else {@code null}
     * @param aux  GELU's input, D's shape and type, written by {@code GELU_AUX_BIAS} and read by
     *             {@code DGELU}; else {@code null}
     */
    record Epilogue(int kind, CudaBuffer bias, CudaBuffer aux) {
        static final Epilogue NONE = new Epilogue(CublasLt.EPILOGUE_DEFAULT, null, null);

        /** {@code D += bias} along columns, or nothing for a {@code null} bias. */
        static Epilogue bias(CudaBuffer bias) {
            return bias == null ? NONE : new Epilogue(CublasLt.EPILOGUE_BIAS, bias, null);
        }
    }

    /** Everything that selects descriptors and an algorithm. */
    private record Shape(boolean transA, boolean transB, long m, long n, long k, DType a, DType b, DType d,
                         int epilogue, int alignA, int alignB, int alignD, int alignBias, int alignAux) {
    }

    /** Descriptors and the chosen algorithm of one shape. */
    private record Plan(MemorySegment desc, MemorySegment aLayout, MemorySegment bLayout, MemorySegment dLayout,
                        MemorySegment algo) {
    }

    /**
     * @param tf32 let fp32 GEMMs round their inputs to TF32 on tensor cores (faster, about 1e-3
     *             relative error); otherwise they compute in full fp32
     */
    CublasLtGemm(Arena arena, MemorySegment stream, long workspace, boolean tf32) {
        this.arena = arena;
        this.stream = stream;
        this.workspace = workspace;
        this.fp32Compute = tf32 ? CublasLt.COMPUTE_32F_FAST_TF32 : CublasLt.COMPUTE_32F;
        this.handle = CublasLt.create();
        this.preference = CublasLt.preferenceCreate();
        CublasLt.preferenceSetAttribute(preference, CublasLt.PREF_MAX_WORKSPACE_BYTES,
                arena.allocateFrom(JAVA_LONG, WORKSPACE_BYTES));
        this.one = arena.allocateFrom(JAVA_FLOAT, 1f);
        this.zero = arena.allocateFrom(JAVA_FLOAT, 0f);
        this.pointer = arena.allocate(ADDRESS);
    }

    /**
     * Queues {@code D[m×n] = op(A)·op(B) + (accumulate ? D : 0)} and then {@code epilogue}, all
     * column-major and packed ({@code lda} = rows of A as stored, and so on).
     *
     * @return whether it was queued: false when cuBLASLt has no algorithm for this epilogue and these
     *         types (the caller then runs the unfused ops); never false for {@link Epilogue#NONE} or a bias
     */
    boolean gemm(boolean transA, boolean transB, long m, long n, long k, CudaBuffer a, CudaBuffer b, CudaBuffer d,
                 boolean accumulate, Epilogue epilogue) {
        if (epilogue.aux != null && m % 8 != 0) {
            return false;  // the aux matrix's leading dimension must be a multiple of 8
        }
        Shape shape = new Shape(transA, transB, m, n, k, a.dtype(), b.dtype(), d.dtype(), epilogue.kind,
                alignment(a.pointer()), alignment(b.pointer()), alignment(d.pointer()), alignment(epilogue.bias),
                alignment(epilogue.aux));
        Optional<Plan> found = plans.get(shape);
        if (found == null) {
            found = plan(shape, epilogue);
            plans.put(shape, found);
        }
        if (found.isEmpty()) {
            if (epilogue.kind == CublasLt.EPILOGUE_DEFAULT || epilogue.kind == CublasLt.EPILOGUE_BIAS) {
                throw new CudaException("cublasLtMatmulAlgoGetHeuristic", 15, "CUBLAS_STATUS_NOT_SUPPORTED",
                        "no algorithm for " + shape);
            }
            return false;
        }
        Plan plan = found.get();
        setPointers(plan.desc, epilogue);
        CublasLt.matmul(handle, plan.desc, one, a.pointer(), plan.aLayout, b.pointer(), plan.bLayout,
                accumulate ? one : zero, d.pointer(), plan.dLayout, d.pointer(), plan.dLayout, plan.algo,
                workspace, WORKSPACE_BYTES, stream);
        return true;
    }

    /** Points the descriptor at this call's epilogue vectors (the heuristic also looks at their alignment). */
    private void setPointers(MemorySegment desc, Epilogue e) {
        if (e.bias != null) {
            pointer.set(ADDRESS, 0, MemorySegment.ofAddress(e.bias.pointer()));
            CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_BIAS_POINTER, pointer);
        }
        if (e.aux != null) {
            pointer.set(ADDRESS, 0, MemorySegment.ofAddress(e.aux.pointer()));
            CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_EPILOGUE_AUX_POINTER, pointer);
        }
    }

    private Optional<Plan> plan(Shape s, Epilogue epilogue) {
        boolean allFp32 = s.a == DType.FP32 && s.b == DType.FP32 && s.d == DType.FP32;
        MemorySegment desc = CublasLt.matmulDescCreate(allFp32 ? fp32Compute : CublasLt.COMPUTE_32F);
        CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_TRANSA,
                arena.allocateFrom(JAVA_INT, s.transA ? CublasLt.OP_T : CublasLt.OP_N));
        CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_TRANSB,
                arena.allocateFrom(JAVA_INT, s.transB ? CublasLt.OP_T : CublasLt.OP_N));
        if (s.epilogue != CublasLt.EPILOGUE_DEFAULT) {
            CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_EPILOGUE, arena.allocateFrom(JAVA_INT, s.epilogue));
        }
        if (epilogue.aux != null) {
            // The aux matrix is laid out as D: its leading dimension is D's row count.
            CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_EPILOGUE_AUX_LD, arena.allocateFrom(JAVA_LONG, s.m));
        }
        setPointers(desc, epilogue);
        // Stored shapes: op(A) is m×k, so A is k×m when transposed; op(B) is k×n.
        MemorySegment aLayout = s.transA ? layout(s.a, s.k, s.m) : layout(s.a, s.m, s.k);
        MemorySegment bLayout = s.transB ? layout(s.b, s.n, s.k) : layout(s.b, s.k, s.n);
        MemorySegment dLayout = layout(s.d, s.m, s.n);
        // Tell the heuristic how aligned the operands really are (slices may sit off 256-byte bounds).
        int[] aligns = {s.alignA, s.alignB, s.alignD, s.alignD};
        for (int i = 0; i < 4; i++) {
            CublasLt.preferenceSetAttribute(preference, CublasLt.PREF_MIN_ALIGNMENT_A_BYTES + i,
                    arena.allocateFrom(JAVA_INT, aligns[i]));
        }
        MemorySegment results = arena.allocate(CublasLt.HEURISTIC_RESULT_BYTES, 8);
        int found = CublasLt.algoGetHeuristic(handle, desc, aLayout, bLayout, dLayout, dLayout, preference, results);
        if (found == 0) {
            CublasLt.matrixLayoutDestroy(aLayout);
            CublasLt.matrixLayoutDestroy(bLayout);
            CublasLt.matrixLayoutDestroy(dLayout);
            CublasLt.matmulDescDestroy(desc);
            return Optional.empty();
        }
        long needed = results.get(JAVA_LONG, CublasLt.HEURISTIC_WORKSPACE_OFFSET);
        if (needed > WORKSPACE_BYTES) {
            throw new IllegalStateException("cuBLASLt chose an algorithm needing " + needed + " bytes of workspace");
        }
        return Optional.of(new Plan(desc, aLayout, bLayout, dLayout, results.asSlice(0, CublasLt.ALGO_BYTES)));
    }

    private static MemorySegment layout(DType dtype, long rows, long cols) {
        int type = switch (dtype) {
            case FP32 -> CublasLt.R_32F;
            case BF16 -> CublasLt.R_16BF;
            case INT32 -> throw new IllegalArgumentException("matmul takes FP32 or BF16 buffers, not INT32");
        };
        return CublasLt.matrixLayoutCreate(type, rows, cols, rows);
    }

    /** The largest power of two up to 256 dividing {@code pointer}. */
    private static int alignment(long pointer) {
        return (int) Math.min(256, Long.lowestOneBit(pointer | 256));
    }

    /** A buffer's alignment, 0 for none. */
    private static int alignment(CudaBuffer buffer) {
        return buffer == null ? 0 : alignment(buffer.pointer());
    }

    @Override
    public void close() {
        for (Plan p : plans.values().stream().flatMap(Optional::stream).toList()) {
            CublasLt.matrixLayoutDestroy(p.aLayout);
            CublasLt.matrixLayoutDestroy(p.bLayout);
            CublasLt.matrixLayoutDestroy(p.dLayout);
            CublasLt.matmulDescDestroy(p.desc);
        }
        plans.clear();
        CublasLt.preferenceDestroy(preference);
        CublasLt.destroy(handle);
    }
}
