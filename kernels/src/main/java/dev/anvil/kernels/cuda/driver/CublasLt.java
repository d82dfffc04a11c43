package dev.anvil.kernels.cuda.driver;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Bindings of cuBLASLt ({@code libcublasLt.so.13}, else {@code .12}; {@code .12} first under a
 * driver for CUDA 12) for matrix multiplication.
 * The enum values below are those of {@code cublasLt.h}, {@code cublas_api.h} and
 * {@code library_types.h} of CUDA 13 (unchanged since CUDA 11). cuBLASLt is column-major; callers
 * map row-major tensors onto it themselves.
 */
@SuppressWarnings("restricted")  // status names come back as bare C string addresses
public final class CublasLt {

    /** {@code CUBLAS_STATUS_SUCCESS}. */
    public static final int STATUS_SUCCESS = 0;
    /** {@code CUBLAS_OP_N}. */
    public static final int OP_N = 0;
    /** {@code CUBLAS_OP_T}. */
    public static final int OP_T = 1;
    /** {@code CUBLAS_COMPUTE_32F}: full fp32 products and sums. */
    public static final int COMPUTE_32F = 68;
    /** {@code CUBLAS_COMPUTE_32F_FAST_TF32}: fp32 inputs rounded to TF32 for tensor cores. */
    public static final int COMPUTE_32F_FAST_TF32 = 77;
    /** {@code CUDA_R_32F}. */
    public static final int R_32F = 0;
    /** {@code CUDA_R_16BF}. */
    public static final int R_16BF = 14;
    /** {@code CUBLASLT_MATMUL_DESC_TRANSA} (int32). */
    public static final int DESC_TRANSA = 3;
    /** {@code CUBLASLT_MATMUL_DESC_TRANSB} (int32). */
    public static final int DESC_TRANSB = 4;
    /** {@code CUBLASLT_MATMUL_DESC_EPILOGUE} (uint32). */
    public static final int DESC_EPILOGUE = 7;
    /** {@code CUBLASLT_MATMUL_DESC_BIAS_POINTER} (pointer). */
    public static final int DESC_BIAS_POINTER = 8;
    /** {@code CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER} (pointer): GELU's input, written forward, read backward. */
    public static final int DESC_EPILOGUE_AUX_POINTER = 11;
    /** {@code CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD} (int64): its leading dimension, a multiple of 8, at least D's rows. */
    public static final int DESC_EPILOGUE_AUX_LD = 12;
    // Epilogues, as cublasLt.h (cuBLAS 13.1) composes them from bits: RELU 2, BIAS 4, DRELU 8, BGRAD 16,
    // GELU 32, DGELU 64, AUX 128, BGRADA 256, BGRADB 512.
    /** {@code CUBLASLT_EPILOGUE_DEFAULT}. */
    public static final int EPILOGUE_DEFAULT = 1;
    /** {@code CUBLASLT_EPILOGUE_BIAS}: adds a bias vector of D's row count to every column. */
    public static final int EPILOGUE_BIAS = 4;
    /** {@code CUBLASLT_EPILOGUE_GELU_AUX_BIAS} (GELU | AUX | BIAS): D = gelu(A·B + bias), aux = A·B + bias. */
    public static final int EPILOGUE_GELU_AUX_BIAS = 32 | 128 | 4;
    /** {@code CUBLASLT_EPILOGUE_DGELU} (64 | AUX): D = (A·B) ∘ gelu'(aux). */
    public static final int EPILOGUE_DGELU = 64 | 128;
    /** {@code CUBLASLT_EPILOGUE_BGRADB}: also writes the bias gradient, op(B) summed over k, one per column of D. */
    public static final int EPILOGUE_BGRADB = 512;
    /** {@code CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES} (uint64). */
    public static final int PREF_MAX_WORKSPACE_BYTES = 1;
    /** {@code CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES} (uint32); B, C and D follow as 6, 7, 8. */
    public static final int PREF_MIN_ALIGNMENT_A_BYTES = 5;
    /** Size of {@code cublasLtMatmulHeuristicResult_t}: algo[64], size_t workspaceSize, int state, float waves, int[4]. */
    public static final long HEURISTIC_RESULT_BYTES = 96;
    /** Offset of {@code workspaceSize} in {@code cublasLtMatmulHeuristicResult_t}. */
    public static final long HEURISTIC_WORKSPACE_OFFSET = 64;
    /** Size of {@code cublasLtMatmulAlgo_t}, the start of a heuristic result. */
    public static final long ALGO_BYTES = 64;

    private static final Binder LIB = Binder.load("cuBLASLt", LibraryLocator.fromEnvironment(),
            fileNames(installedDriverVersion()), Binder.Order.FOLDERS_FIRST);
    private static final MethodHandle cublasLtCreate = LIB.bind("cublasLtCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cublasLtDestroy = LIB.bind("cublasLtDestroy",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cublasLtMatmulDescCreate = LIB.bind("cublasLtMatmulDescCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle cublasLtMatmulDescDestroy = LIB.bind("cublasLtMatmulDescDestroy",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cublasLtMatmulDescSetAttribute = LIB.bind("cublasLtMatmulDescSetAttribute",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle cublasLtMatrixLayoutCreate = LIB.bind("cublasLtMatrixLayoutCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle cublasLtMatrixLayoutDestroy = LIB.bind("cublasLtMatrixLayoutDestroy",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cublasLtMatmulPreferenceCreate = LIB.bind("cublasLtMatmulPreferenceCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cublasLtMatmulPreferenceDestroy = LIB.bind("cublasLtMatmulPreferenceDestroy",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cublasLtMatmulPreferenceSetAttribute = LIB.bind(
            "cublasLtMatmulPreferenceSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle cublasLtMatmulAlgoGetHeuristic = LIB.bind("cublasLtMatmulAlgoGetHeuristic",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT,
                    ADDRESS, ADDRESS));
    private static final MethodHandle cublasLtMatmul = LIB.bind("cublasLtMatmul",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS,
                    JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
    private static final MethodHandle cublasLtGetStatusName = LIB.bind("cublasLtGetStatusName",
            FunctionDescriptor.of(ADDRESS, JAVA_INT));
    private static final MethodHandle cublasLtGetStatusString = LIB.bind("cublasLtGetStatusString",
            FunctionDescriptor.of(ADDRESS, JAVA_INT));

    private CublasLt() {
    }

    /**
     * The file names to load, preferred first: cuBLASLt 13, else 12; but 12 first under a driver older
     * than CUDA 13 ({@code driverVersion} below 13000, 0 when unknown), which cannot run cuBLASLt 13.
     */
    static List<String> fileNames(int driverVersion) {
        return driverVersion > 0 && driverVersion < 13000
                ? List.of("libcublasLt.so.12", "libcublasLt.so.13")
                : List.of("libcublasLt.so.13", "libcublasLt.so.12");
    }

    private static int installedDriverVersion() {
        try {
            return Driver.driverVersion();
        } catch (RuntimeException e) {
            return 0;  // no driver, or a stub: nothing to prefer
        }
    }

    /** cuBLASLt's major version (12 or 13), from the name it was loaded by; 0 when it is not loaded. */
    public static int majorVersion() {
        return LIB.loadedName().map(CublasLt::soVersion).orElse(0);
    }

    /** The major version in a file name like {@code libcublasLt.so.13}, or 0. */
    static int soVersion(String fileName) {
        int at = fileName.indexOf(".so.");
        if (at < 0) {
            return 0;
        }
        String rest = fileName.substring(at + 4).split("\\.")[0];
        return rest.chars().allMatch(Character::isDigit) && !rest.isEmpty() ? Integer.parseInt(rest) : 0;
    }

    /** Why cuBLASLt could not be loaded, or empty when it was. */
    public static Optional<RuntimeException> loadFailure() {
        return LIB.failure();
    }

    /** Throws a {@link CudaException} for a {@code cublasStatus_t} other than success, named by cuBLASLt. */
    public static void check(int status, String call) {
        if (status != STATUS_SUCCESS) {
            throw new CudaException(call, status, statusText(cublasLtGetStatusName, status, "unknown cublasStatus_t"),
                    statusText(cublasLtGetStatusString, status, "no description"));
        }
    }

    private static String statusText(MethodHandle getter, int status, String fallback) {
        try {
            MemorySegment s = (MemorySegment) getter.invokeExact(status);
            return s.equals(MemorySegment.NULL) ? fallback : s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return fallback;  // the library itself is missing; the status code still says what failed
        }
    }

    /** A cuBLASLt handle for the current context. */
    public static MemorySegment create() {
        return handleOut("cublasLtCreate", out -> (int) cublasLtCreate.invokeExact(out));
    }

    /** Destroys a handle from {@link #create}. */
    public static void destroy(MemorySegment handle) {
        try {
            check((int) cublasLtDestroy.invokeExact(handle), "cublasLtDestroy");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** A matmul descriptor computing in {@code computeType} with fp32 alpha and beta. */
    public static MemorySegment matmulDescCreate(int computeType) {
        return handleOut("cublasLtMatmulDescCreate",
                out -> (int) cublasLtMatmulDescCreate.invokeExact(out, computeType, R_32F));
    }

    /** Destroys a matmul descriptor. */
    public static void matmulDescDestroy(MemorySegment desc) {
        try {
            check((int) cublasLtMatmulDescDestroy.invokeExact(desc), "cublasLtMatmulDescDestroy");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Sets a matmul descriptor attribute from {@code value}'s bytes. */
    public static void matmulDescSetAttribute(MemorySegment desc, int attribute, MemorySegment value) {
        try {
            check((int) cublasLtMatmulDescSetAttribute.invokeExact(desc, attribute, value, value.byteSize()),
                    "cublasLtMatmulDescSetAttribute(" + attribute + ")");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** A column-major {@code rows × cols} layout of {@code dataType} with leading dimension {@code ld}. */
    public static MemorySegment matrixLayoutCreate(int dataType, long rows, long cols, long ld) {
        return handleOut("cublasLtMatrixLayoutCreate",
                out -> (int) cublasLtMatrixLayoutCreate.invokeExact(out, dataType, rows, cols, ld));
    }

    /** Destroys a layout. */
    public static void matrixLayoutDestroy(MemorySegment layout) {
        try {
            check((int) cublasLtMatrixLayoutDestroy.invokeExact(layout), "cublasLtMatrixLayoutDestroy");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** A heuristic-search preference. */
    public static MemorySegment preferenceCreate() {
        return handleOut("cublasLtMatmulPreferenceCreate", out -> (int) cublasLtMatmulPreferenceCreate.invokeExact(out));
    }

    /** Destroys a preference. */
    public static void preferenceDestroy(MemorySegment preference) {
        try {
            check((int) cublasLtMatmulPreferenceDestroy.invokeExact(preference), "cublasLtMatmulPreferenceDestroy");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Sets a preference attribute from {@code value}'s bytes. */
    public static void preferenceSetAttribute(MemorySegment preference, int attribute, MemorySegment value) {
        try {
            check((int) cublasLtMatmulPreferenceSetAttribute.invokeExact(preference, attribute, value,
                    value.byteSize()), "cublasLtMatmulPreferenceSetAttribute(" + attribute + ")");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /**
     * Asks for up to {@code results.byteSize() / HEURISTIC_RESULT_BYTES} algorithms, best first;
     * returns how many were found.
     */
    public static int algoGetHeuristic(MemorySegment handle, MemorySegment desc, MemorySegment a, MemorySegment b,
                                       MemorySegment c, MemorySegment d, MemorySegment preference,
                                       MemorySegment results) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_INT);
            int requested = (int) (results.byteSize() / HEURISTIC_RESULT_BYTES);
            check((int) cublasLtMatmulAlgoGetHeuristic.invokeExact(handle, desc, a, b, c, d, preference, requested,
                    results, count), "cublasLtMatmulAlgoGetHeuristic");
            return count.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /**
     * Queues {@code D = alpha·op(A)·op(B) + beta·C} on {@code stream}; alpha and beta are host fp32
     * values, read before the call returns.
     */
    public static void matmul(MemorySegment handle, MemorySegment desc, MemorySegment alpha, long a,
                              MemorySegment aLayout, long b, MemorySegment bLayout, MemorySegment beta, long c,
                              MemorySegment cLayout, long d, MemorySegment dLayout, MemorySegment algo,
                              long workspace, long workspaceBytes, MemorySegment stream) {
        try {
            check((int) cublasLtMatmul.invokeExact(handle, desc, alpha, a, aLayout, b, bLayout, beta, c, cLayout, d,
                    dLayout, algo, workspace, workspaceBytes, stream), "cublasLtMatmul");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    @FunctionalInterface
    private interface HandleCall {
        int call(MemorySegment out) throws Throwable;
    }

    private static MemorySegment handleOut(String name, HandleCall call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(call.call(out), name);
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }
}
