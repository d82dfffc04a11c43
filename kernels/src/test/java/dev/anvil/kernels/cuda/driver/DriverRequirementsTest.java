package dev.anvil.kernels.cuda.driver;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The driver checks are pure functions of version numbers, so the old-driver case runs anywhere. */
class DriverRequirementsTest {

    @Test
    void anOldDriverIsNamedWithWhatIsNeededAndBothWaysOut() {
        String m = DriverRequirements.versionProblem(12040, 13000, 13).orElseThrow();

        assertEquals("the NVIDIA driver supports CUDA 12.4, but Anvil's kernels (built by nvcc 13.0) and cuBLASLt 13"
                + " need a driver for CUDA 13.0 or newer: update the NVIDIA driver to r580 or newer, or build the"
                + " kernels with a CUDA 12 nvcc (./mvnw package -Danvil.nvcc=/usr/local/cuda-12/bin/nvcc) and provide"
                + " libcublasLt.so.12", m);
        assertFalse(m.contains("\n"));
    }

    @Test
    void theRequirementIsTheNewestOfKernelsAndCublas() {
        assertTrue(DriverRequirements.versionProblem(12080, 12080, 12).isEmpty(), "CUDA 12 builds on a 12.8 driver");
        assertTrue(DriverRequirements.versionProblem(12000, 12080, 12).isEmpty(), "minor versions are compatible");
        assertTrue(DriverRequirements.versionProblem(13000, 13000, 13).isEmpty());
        assertTrue(DriverRequirements.versionProblem(13020, 0, 0).isEmpty(), "unknown versions ask for CUDA 12");
        String cublasOnly = DriverRequirements.versionProblem(12080, 12080, 13).orElseThrow();
        assertTrue(cublasOnly.contains("but cuBLASLt 13 needs a driver for CUDA 13.0"), cublasOnly);
        String kernelsOnly = DriverRequirements.versionProblem(12080, 13000, 12).orElseThrow();
        assertTrue(kernelsOnly.contains("but Anvil's kernels (built by nvcc 13.0) need a driver"), kernelsOnly);
    }

    @Test
    void aDriverOlderThanCuda12CanOnlyBeUpdated() {
        String m = DriverRequirements.versionProblem(11080, 0, 0).orElseThrow();

        assertTrue(m.startsWith("the NVIDIA driver supports CUDA 11.8, but Anvil's CUDA backend needs a driver for"
                + " CUDA 12.0 or newer: update the NVIDIA driver to r525 or newer"), m);
        assertFalse(m.contains("nvcc"), m);
    }

    @Test
    void aStubIsNamedWithItsFolder() {
        Path stub = Path.of("/usr/local/cuda/lib64/stubs/libcuda.so.1");
        String m = DriverRequirements.stubLibrary(Optional.of(stub));

        assertTrue(m.startsWith("the libcuda that was loaded (" + stub + ") is CUDA's stub for linking"), m);
        assertTrue(m.contains("take the stub's folder (/usr/local/cuda/lib64/stubs) out of LD_LIBRARY_PATH"), m);
        assertFalse(m.contains("\n"));
        assertTrue(DriverRequirements.stubLibrary(Optional.empty()).startsWith("the libcuda that was loaded is CUDA's stub"));
    }

    @Test
    void cublasTwelveIsPreferredUnderADriverForCuda12() {
        assertEquals(List.of("libcublasLt.so.12", "libcublasLt.so.13"), CublasLt.fileNames(12080));
        assertEquals(List.of("libcublasLt.so.13", "libcublasLt.so.12"), CublasLt.fileNames(13000));
        assertEquals(List.of("libcublasLt.so.13", "libcublasLt.so.12"), CublasLt.fileNames(0));
        assertEquals(13, CublasLt.soVersion("libcublasLt.so.13"));
        assertEquals(12, CublasLt.soVersion("libcublasLt.so.12.8.4"));
        assertEquals(0, CublasLt.soVersion("libcublasLt.so"));
    }
}
