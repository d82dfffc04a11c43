package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.CublasLt;
import dev.anvil.kernels.cuda.driver.Driver;
import dev.anvil.kernels.cuda.driver.LibraryNotFoundException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.MemorySegment;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Where a library is missing its handles throw {@link LibraryNotFoundException}, but they keep the
 * real functions' types, so calling every wrapper checks that each {@code invokeExact} call site
 * matches its {@code FunctionDescriptor}: a mismatch would throw {@code WrongMethodTypeException}.
 * This is the part of the bindings a machine without CUDA can check.
 */
class CallSiteTest {

    private static final MemorySegment NULL = MemorySegment.NULL;

    @Test
    void everyDriverWrapperReachesItsHandle() {
        assumeTrue(Driver.loadFailure().isPresent(), "libcuda is installed; the GPU tests call the real thing");
        List<Executable> calls = List.of(
                Driver::init, Driver::driverVersion, Driver::deviceCount, () -> Driver.device(0),
                () -> Driver.deviceName(0), () -> Driver.deviceAttribute(0, Driver.ATTRIBUTE_MULTIPROCESSOR_COUNT),
                () -> Driver.primaryContextRetain(0), () -> Driver.primaryContextRelease(0),
                () -> Driver.setCurrentContext(NULL), Driver::memoryInfo, () -> Driver.memAlloc(16),
                () -> Driver.memFree(0), () -> Driver.memHostAlloc(16), () -> Driver.memFreeHost(NULL),
                () -> Driver.memcpyHtoDAsync(0, NULL, 0, NULL), () -> Driver.memcpyDtoHAsync(NULL, 0, 0, NULL),
                () -> Driver.memcpyDtoDAsync(0, 0, 0, NULL), () -> Driver.memsetD8Async(0, (byte) 0, 0, NULL),
                () -> Driver.memsetD32Async(0, 0, 0, NULL), () -> Driver.streamCreate(0),
                () -> Driver.streamDestroy(NULL), () -> Driver.streamSynchronize(NULL), () -> Driver.eventCreate(0),
                () -> Driver.eventRecord(NULL, NULL), () -> Driver.eventSynchronize(NULL),
                () -> Driver.eventElapsedMillis(NULL, NULL), () -> Driver.eventDestroy(NULL),
                () -> Driver.moduleLoadData(NULL), () -> Driver.moduleUnload(NULL),
                () -> Driver.moduleGetFunction(NULL, "f"),
                () -> Driver.launchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL));
        for (Executable call : calls) {
            assertThrows(LibraryNotFoundException.class, call);
        }
    }

    @Test
    void everyCublasLtWrapperReachesItsHandle() {
        assumeTrue(CublasLt.loadFailure().isPresent(), "cuBLASLt is installed; CublasLtDescriptorTest uses it");
        List<Executable> calls = List.of(
                CublasLt::create, () -> CublasLt.destroy(NULL), () -> CublasLt.matmulDescCreate(CublasLt.COMPUTE_32F),
                () -> CublasLt.matmulDescDestroy(NULL),
                () -> CublasLt.matmulDescSetAttribute(NULL, CublasLt.DESC_TRANSA, NULL),
                () -> CublasLt.matrixLayoutCreate(CublasLt.R_32F, 1, 1, 1), () -> CublasLt.matrixLayoutDestroy(NULL),
                CublasLt::preferenceCreate, () -> CublasLt.preferenceDestroy(NULL),
                () -> CublasLt.preferenceSetAttribute(NULL, CublasLt.PREF_MAX_WORKSPACE_BYTES, NULL),
                () -> CublasLt.algoGetHeuristic(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                () -> CublasLt.matmul(NULL, NULL, NULL, 0, NULL, 0, NULL, NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL));
        for (Executable call : calls) {
            assertThrows(LibraryNotFoundException.class, call);
        }
    }
}
