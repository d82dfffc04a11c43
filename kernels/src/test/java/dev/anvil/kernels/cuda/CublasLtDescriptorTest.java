package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.CublasLt;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * cuBLASLt's descriptor calls run on the host, so where the library is installed (a GPU or not)
 * this checks the bindings and the attribute values and sizes {@link CublasLtGemm} passes: cuBLASLt
 * rejects an unknown attribute or a wrong size with CUBLAS_STATUS_INVALID_VALUE.
 */
class CublasLtDescriptorTest {

    @BeforeEach
    void requireLibrary() {
        RequireCuda.assume(CublasLt.loadFailure().isEmpty(), () -> CublasLt.loadFailure().get().getMessage());
    }

    @Test
    void matmulDescriptorsAcceptTheAttributesTheBackendSets() {
        try (Arena arena = Arena.ofConfined()) {
            for (int compute : new int[] {CublasLt.COMPUTE_32F, CublasLt.COMPUTE_32F_FAST_TF32}) {
                MemorySegment desc = CublasLt.matmulDescCreate(compute);
                CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_TRANSA, arena.allocateFrom(JAVA_INT, CublasLt.OP_T));
                CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_TRANSB, arena.allocateFrom(JAVA_INT, CublasLt.OP_N));
                CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_EPILOGUE,
                        arena.allocateFrom(JAVA_INT, CublasLt.EPILOGUE_BIAS));
                MemorySegment bias = arena.allocate(ADDRESS);
                bias.set(ADDRESS, 0, MemorySegment.ofAddress(0x7f00_0000_0000L));
                CublasLt.matmulDescSetAttribute(desc, CublasLt.DESC_BIAS_POINTER, bias);
                CublasLt.matmulDescDestroy(desc);
            }
        }
    }

    @Test
    void layoutsAndPreferencesAreCreated() {
        try (Arena arena = Arena.ofConfined()) {
            for (int type : new int[] {CublasLt.R_32F, CublasLt.R_16BF}) {
                CublasLt.matrixLayoutDestroy(CublasLt.matrixLayoutCreate(type, 768, 8192, 768));
            }
            MemorySegment preference = CublasLt.preferenceCreate();
            CublasLt.preferenceSetAttribute(preference, CublasLt.PREF_MAX_WORKSPACE_BYTES,
                    arena.allocateFrom(JAVA_LONG, CublasLtGemm.WORKSPACE_BYTES));
            for (int i = 0; i < 4; i++) {
                CublasLt.preferenceSetAttribute(preference, CublasLt.PREF_MIN_ALIGNMENT_A_BYTES + i,
                        arena.allocateFrom(JAVA_INT, 16));
            }
            CublasLt.preferenceDestroy(preference);
        }
    }
}
