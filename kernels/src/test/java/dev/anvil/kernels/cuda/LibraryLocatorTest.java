package dev.anvil.kernels.cuda;

import dev.anvil.kernels.cuda.driver.LibraryLocator;
import dev.anvil.kernels.cuda.driver.LibraryNotFoundException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Library discovery runs without a GPU: it only looks at directories. */
class LibraryLocatorTest {

    @Test
    void missingLibraryErrorListsEveryPlaceSearched(@TempDir Path empty) {
        Path other = empty.resolve("other");
        LibraryLocator locator = new LibraryLocator(List.of(empty, other));
        List<String> names = List.of("libcublasLt.so.13", "libcublasLt.so.12");

        assertTrue(locator.find(names).isEmpty());
        LibraryNotFoundException e = locator.notFound("cuBLASLt", names);
        String message = e.getMessage();
        assertTrue(message.startsWith("cuBLASLt not found: looked for libcublasLt.so.13 or libcublasLt.so.12"),
                message);
        assertTrue(message.contains(empty + ", "), message);
        assertTrue(message.contains(other + ", "), message);
        assertTrue(message.contains(LibraryLocator.ENV_DIR), message);
    }

    @Test
    void environmentDirectoriesComeFirstInOrder(@TempDir Path home) {
        Map<String, String> env = Map.of(
                LibraryLocator.ENV_DIR, "/opt/a:/opt/b",
                "CUDA_HOME", "/opt/cuda",
                "LD_LIBRARY_PATH", "/opt/ld");
        List<Path> dirs = LibraryLocator.forEnvironment(env, home).directories();

        assertEquals(List.of(Path.of("/opt/a"), Path.of("/opt/b"), Path.of("/opt/cuda/lib64"),
                Path.of("/opt/cuda/lib"), Path.of("/opt/cuda/targets/x86_64-linux/lib"), Path.of("/opt/ld")),
                dirs.subList(0, 6));
        assertTrue(dirs.contains(Path.of("/usr/local/cuda/lib64")), dirs.toString());
        assertTrue(dirs.contains(Path.of("/usr/lib/x86_64-linux-gnu")), dirs.toString());
    }

    @Test
    void findsPipWheelFoldersUnderAVirtualEnvironment(@TempDir Path root) throws IOException {
        Path venv = root.resolve("venv");
        Path lib = Files.createDirectories(venv.resolve("lib/python3.12/site-packages/nvidia/cu13/lib"));
        Files.createFile(lib.resolve("libcublasLt.so.13"));

        LibraryLocator locator = LibraryLocator.forEnvironment(Map.of("VIRTUAL_ENV", venv.toString()), root);

        assertTrue(locator.directories().contains(lib), locator.directories().toString());
        assertEquals(lib.resolve("libcublasLt.so.13"), locator.find(List.of("libcublasLt.so.13")).orElseThrow());
    }

    @Test
    void firstDirectoryWinsAndPrefersEarlierNames(@TempDir Path root) throws IOException {
        Path first = Files.createDirectories(root.resolve("first"));
        Path second = Files.createDirectories(root.resolve("second"));
        Files.createFile(first.resolve("libcublasLt.so.12"));
        Files.createFile(first.resolve("libcublasLt.so.13"));
        Files.createFile(second.resolve("libcublasLt.so.13"));

        LibraryLocator locator = new LibraryLocator(List.of(root.resolve("missing"), first, second));

        assertEquals(first.resolve("libcublasLt.so.13"),
                locator.find(List.of("libcublasLt.so.13", "libcublasLt.so.12")).orElseThrow());
    }
}
