package dev.anvil.kernels.cuda.driver;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static dev.anvil.kernels.cuda.driver.FakeLibraries.elf64;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The order in which libraries are tried, and what happens when one fails, checked with the C
 * library (which every machine has) and files that only look like libraries.
 */
class BinderTest {

    private static final FunctionDescriptor GETPID = FunctionDescriptor.of(JAVA_INT);

    /**
     * Images put {@code .../stubs} (holding the stub {@code libcuda.so}) on LD_LIBRARY_PATH: the
     * driver is asked of the system loader first, by its versioned name only.
     */
    @Test
    void theDriverIsAskedOfTheSystemLoaderFirstAndNeverByTheBareName(@TempDir Path dir) throws IOException {
        elf64(dir.resolve("libcuda.so"));
        elf64(dir.resolve("libcuda.so.1"));

        List<Binder.Attempt> attempts = Binder.attempts(new LibraryLocator(List.of(dir)), Driver.FILE_NAMES, Driver.ORDER);

        assertEquals(List.of(new Binder.Attempt("libcuda.so.1", Optional.empty()),
                new Binder.Attempt("libcuda.so.1", Optional.of(dir.resolve("libcuda.so.1")))), attempts);
    }

    @Test
    void toolkitLibrariesComeFromTheFoldersFirst(@TempDir Path dir) throws IOException {
        elf64(dir.resolve("libcublasLt.so.12"));
        List<String> names = List.of("libcublasLt.so.13", "libcublasLt.so.12");

        List<Binder.Attempt> attempts = Binder.attempts(new LibraryLocator(List.of(dir)), names,
                Binder.Order.FOLDERS_FIRST);

        assertEquals(List.of(new Binder.Attempt("libcublasLt.so.12", Optional.of(dir.resolve("libcublasLt.so.12"))),
                new Binder.Attempt("libcublasLt.so.13", Optional.empty()),
                new Binder.Attempt("libcublasLt.so.12", Optional.empty())), attempts);
    }

    /** A broken file first in the search (it passes the ELF check, then fails to load) is skipped over. */
    @Test
    void aLibraryThatFailsToLoadDoesNotStopTheSearch(@TempDir Path dir) throws Throwable {
        elf64(dir.resolve("libc.so.6"));

        Binder libc = Binder.load("the C library", new LibraryLocator(List.of(dir)), List.of("libc.so.6"),
                Binder.Order.FOLDERS_FIRST);

        assertTrue(libc.failure().isEmpty(), () -> libc.failure().get().getMessage());
        MethodHandle getpid = libc.bind("getpid", GETPID);
        assertEquals(ProcessHandle.current().pid(), (int) getpid.invokeExact());
        Path from = libc.loadedFrom().orElseThrow();
        assertTrue(from.getFileName().toString().startsWith("libc.so"), from.toString());
    }

    @Test
    void whenNothingLoadsTheErrorSaysWhyEachAttemptFailed(@TempDir Path dir) throws IOException {
        Path broken = elf64(dir.resolve("libanvil-absent.so.1"));

        Binder binder = Binder.load("libanvil-absent", new LibraryLocator(List.of(dir)), List.of("libanvil-absent.so.1"),
                Binder.Order.SYSTEM_LOADER_FIRST);

        String message = binder.failure().orElseThrow().getMessage();
        assertTrue(message.startsWith("libanvil-absent not found"), message);
        assertTrue(message.contains(broken + " could not be loaded"), message);
        MethodHandle any = binder.bind("getpid", GETPID);
        assertThrows(LibraryNotFoundException.class, () -> {
            int ignored = (int) any.invokeExact();
        });
    }

    /** How cuEventElapsedTime is bound: the _v2 entry point where the driver has it, else the original. */
    @Test
    void bindFirstFallsBackToTheOlderEntryPoint() throws Throwable {
        Binder libc = Binder.load("the C library", new LibraryLocator(List.of()), List.of("libc.so.6"),
                Binder.Order.SYSTEM_LOADER_FIRST);

        MethodHandle getpid = libc.bindFirst(List.of("getpid_v2_not_in_any_libc", "getpid"), GETPID);

        assertEquals(ProcessHandle.current().pid(), (int) getpid.invokeExact());
        MethodHandle neither = libc.bindFirst(List.of("anvil_a_v2", "anvil_a"), GETPID);
        LibraryNotFoundException e = assertThrows(LibraryNotFoundException.class, () -> {
            int ignored = (int) neither.invokeExact();
        });
        assertTrue(e.getMessage().contains("has no function anvil_a_v2 or anvil_a"), e.getMessage());
    }
}
