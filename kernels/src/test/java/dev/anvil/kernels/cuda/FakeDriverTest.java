package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.FakeLibraries;
import dev.anvil.kernels.cuda.driver.LibraryLocator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The backend's first words about a broken driver, end to end: a fake {@code libcuda.so.1}, compiled
 * here with {@code cc}, is put first on LD_LIBRARY_PATH of a child JVM (where images put CUDA's
 * {@code stubs} folder), and the child prints why the CUDA backend cannot open. No GPU needed.
 */
class FakeDriverTest {

    /** The driver API functions the backend calls before it gives its reason; {@code %s} are cuInit's status and the version. */
    private static final String FAKE_DRIVER = """
            int cuInit(unsigned int flags) { return %s; }
            int cuDriverGetVersion(int *version) { *version = %s; return 0; }
            int cuDeviceGetCount(int *count) { *count = 0; return 0; }
            int cuGetErrorName(int status, const char **name) {
                *name = status == 34 ? "CUDA_ERROR_STUB_LIBRARY" : "CUDA_ERROR_UNKNOWN";
                return 0;
            }
            int cuGetErrorString(int status, const char **text) { *text = "fake driver"; return 0; }
            """;

    @TempDir
    Path dir;

    @BeforeEach
    void needsACompiler() {
        assumeTrue(FakeLibraries.compilerAvailable(), "no C compiler (cc) to build a fake libcuda.so.1");
    }

    @Test
    void aStubLibcudaIsNamedAsAStubInOneLine() throws Exception {
        Path stub = FakeLibraries.compile(dir.resolve("lib64/libcuda.so.1"), FAKE_DRIVER.formatted(34, 13000));

        List<String> out = reasonWithDriverIn(stub.getParent());

        assertEquals(1, out.size(), out.toString());
        assertTrue(out.getFirst().startsWith("no CUDA device: the libcuda that was loaded (" + stub.toRealPath()
                + ") is CUDA's stub for linking, not the NVIDIA driver"), out.getFirst());
    }

    @Test
    void anOldDriverIsNamedWithItsCudaVersion() throws Exception {
        int built = CudaKernels.cudaVersion();
        assumeTrue(built >= 13000, "the kernels were not built by a CUDA 13 nvcc (cuda.version " + built + ")");
        Path old = FakeLibraries.compile(dir.resolve("lib64/libcuda.so.1"), FAKE_DRIVER.formatted(0, 12040));

        List<String> out = reasonWithDriverIn(old.getParent());

        assertEquals(1, out.size(), out.toString());
        assertTrue(out.getFirst().startsWith("no CUDA device: the NVIDIA driver supports CUDA 12.4, but Anvil's kernels"
                + " (built by nvcc 13.0) need a driver for CUDA 13.0 or newer: update the NVIDIA driver"), out.getFirst());
    }

    /** The lines {@link PrintCudaReason} prints in a JVM whose LD_LIBRARY_PATH starts with {@code libDir}. */
    private static List<String> reasonWithDriverIn(Path libDir) throws IOException, InterruptedException,
            URISyntaxException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // The two class folders (or jars) are all the child needs; the parent's class path may be a launcher's.
        String classpath = location(PrintCudaReason.class) + File.pathSeparator + location(CudaBackend.class);
        ProcessBuilder pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", classpath,
                PrintCudaReason.class.getName()).redirectErrorStream(true);
        String inherited = System.getenv("LD_LIBRARY_PATH");
        pb.environment().put("LD_LIBRARY_PATH", libDir + (inherited == null ? "" : File.pathSeparator + inherited));
        pb.environment().remove(LibraryLocator.ENV_DIR);
        // The child prints only its reason: no options picked up from the caller's environment (whose
        // "Picked up JDK_JAVA_OPTIONS" note would be a second line).
        for (String options : List.of("JDK_JAVA_OPTIONS", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS")) {
            pb.environment().remove(options);
        }
        Process p = pb.start();
        List<String> lines = new ArrayList<>(new String(p.getInputStream().readAllBytes()).lines().toList());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child JVM did not finish");
        assertEquals(0, p.exitValue(), lines.toString());
        lines.removeIf(l -> l.startsWith("WARNING") || l.isBlank());
        return lines;
    }

    private static String location(Class<?> c) throws URISyntaxException {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }
}
