package dev.anvil.kernels.cuda.driver;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.anvil.kernels.cuda.driver.FakeLibraries.elf32;
import static dev.anvil.kernels.cuda.driver.FakeLibraries.elf64;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Library discovery runs without a GPU: it only looks at directories and file headers. */
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
        assertTrue(dirs.contains(Path.of("/usr/local/nvidia/lib64")), dirs.toString());
        assertTrue(dirs.contains(Path.of("/usr/lib/x86_64-linux-gnu")), dirs.toString());
    }

    @Test
    void findsPipWheelFoldersUnderAVirtualEnvironment(@TempDir Path root) throws IOException {
        Path venv = root.resolve("venv");
        Path lib = venv.resolve("lib/python3.12/site-packages/nvidia/cu13/lib");
        elf64(lib.resolve("libcublasLt.so.13"));

        LibraryLocator locator = LibraryLocator.forEnvironment(Map.of("VIRTUAL_ENV", venv.toString()), root);

        assertTrue(locator.directories().contains(lib), locator.directories().toString());
        assertEquals(lib.resolve("libcublasLt.so.13"), locator.find(List.of("libcublasLt.so.13")).orElseThrow());
    }

    @Test
    void firstDirectoryWinsAndPrefersEarlierNames(@TempDir Path root) throws IOException {
        Path first = root.resolve("first");
        Path second = root.resolve("second");
        elf64(first.resolve("libcublasLt.so.12"));
        elf64(first.resolve("libcublasLt.so.13"));
        elf64(second.resolve("libcublasLt.so.13"));

        LibraryLocator locator = new LibraryLocator(List.of(root.resolve("missing"), first, second));

        List<String> names = List.of("libcublasLt.so.13", "libcublasLt.so.12");
        assertEquals(first.resolve("libcublasLt.so.13"), locator.find(names).orElseThrow());
        assertEquals(List.of(first.resolve("libcublasLt.so.13"), first.resolve("libcublasLt.so.12"),
                second.resolve("libcublasLt.so.13")), locator.candidates(names));
    }

    /**
     * An image's LD_LIBRARY_PATH often holds CUDA's {@code stubs} folder, the toolkit's {@code compat}
     * driver and 32-bit copies; only real 64-bit libraries outside those folders are candidates, and
     * each skipped file is named with the reason.
     */
    @Test
    void skipsStubsCompatThirtyTwoBitCopiesAndLinkerScripts(@TempDir Path root) throws IOException {
        Path stubs = root.resolve("cuda/lib64/stubs"), compat = root.resolve("cuda/compat");
        Path lib32 = root.resolve("lib32"), scripts = root.resolve("scripts"), good = root.resolve("lib64");
        elf64(stubs.resolve("libcuda.so.1"));
        elf64(compat.resolve("libcuda.so.1"));
        elf32(lib32.resolve("libcuda.so.1"));
        Files.createDirectories(scripts);
        Files.writeString(scripts.resolve("libcuda.so.1"), "INPUT(libcuda.so.580)\n");
        elf64(good.resolve("libcuda.so.1"));
        List<String> name = List.of("libcuda.so.1");

        LibraryLocator locator = new LibraryLocator(List.of(stubs, compat, lib32, scripts, good));

        assertEquals(List.of(good.resolve("libcuda.so.1")), locator.candidates(name));
        Map<Path, String> skipped = locator.skipped(name);
        assertTrue(skipped.get(stubs.resolve("libcuda.so.1")).contains("stub"), skipped.toString());
        assertTrue(skipped.get(compat.resolve("libcuda.so.1")).contains("forward-compatibility"), skipped.toString());
        assertTrue(skipped.get(lib32.resolve("libcuda.so.1")).contains("32-bit"), skipped.toString());
        assertTrue(skipped.get(scripts.resolve("libcuda.so.1")).contains("not an ELF"), skipped.toString());
        String message = locator.notFound("libcuda", name).getMessage();
        assertTrue(message.contains("skipped " + stubs.resolve("libcuda.so.1") + " (a stub"), message);
    }

    @Test
    void aCompatFolderNamedByTheUserIsSearched(@TempDir Path root) throws IOException {
        Path compat = root.resolve("cuda-13.0/compat");
        elf64(compat.resolve("libcuda.so.1"));

        LibraryLocator locator = LibraryLocator.forEnvironment(Map.of(LibraryLocator.ENV_DIR, compat.toString()), root);

        assertEquals(compat.resolve("libcuda.so.1"), locator.find(List.of("libcuda.so.1")).orElseThrow());
    }
}
