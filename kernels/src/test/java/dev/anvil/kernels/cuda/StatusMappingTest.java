package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.CublasLt;
import dev.anvil.kernels.cuda.driver.CudaException;
import dev.anvil.kernels.cuda.driver.Driver;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * Status codes become exceptions naming the call and the code. Where the libraries are installed
 * (with or without a GPU) the libraries' own names for the codes appear too.
 */
class StatusMappingTest {

    @Test
    void successIsSilent() {
        assertDoesNotThrow(() -> Driver.check(0, "cuInit"));
        assertDoesNotThrow(() -> CublasLt.check(0, "cublasLtCreate"));
    }

    @Test
    void driverErrorNamesCallAndCode() {
        CudaException e = assertThrows(CudaException.class, () -> Driver.check(100, "cuInit"));
        assertEquals("cuInit", e.call());
        assertEquals(100, e.status());
        assertTrue(e.getMessage().startsWith("cuInit failed: "), e.getMessage());
        assertTrue(e.getMessage().contains("(100)"), e.getMessage());
        if (Driver.loadFailure().isEmpty()) {
            assertEquals("CUDA_ERROR_NO_DEVICE", e.statusName());
        } else {
            System.out.println("libcuda not loaded, so the code is not named: " + e.getMessage());
        }
    }

    @Test
    void cublasErrorNamesCallAndCode() {
        CudaException e = assertThrows(CudaException.class, () -> CublasLt.check(7, "cublasLtMatmul"));
        assertEquals("cublasLtMatmul", e.call());
        assertEquals(7, e.status());
        assertTrue(e.getMessage().startsWith("cublasLtMatmul failed: "), e.getMessage());
        if (CublasLt.loadFailure().isEmpty()) {
            assertEquals("CUBLAS_STATUS_INVALID_VALUE", e.statusName());
        } else {
            System.out.println("cuBLASLt not loaded, so the code is not named: " + e.getMessage());
        }
    }

    @Test
    void unavailableBackendSaysWhyInOneLine() {
        assumeFalse(CudaBackend.isAvailable(), "a CUDA device is available: there is no reason to check");
        String reason = CudaBackend.unavailableReason().orElseThrow();
        System.out.println("CUDA backend unavailable: " + reason);
        assertTrue(reason.startsWith("no CUDA device: "), reason);
        assertTrue(!reason.contains("\n"), reason);
        CudaUnavailableException e = assertThrows(CudaUnavailableException.class, CudaBackend::open);
        assertEquals(reason, e.getMessage());
    }
}
