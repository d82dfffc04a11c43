package dev.anvil.kernels.cuda.driver;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Loads one native library and binds its functions to downcall handles. When the library (or one
 * symbol) is missing, the handle still exists with the right type but throws the loading error, so
 * the bindings can be {@code static final} fields whether or not CUDA is installed.
 */
@SuppressWarnings("restricted")  // loading libraries and binding symbols is what this class is for
final class Binder {

    private static final Linker LINKER = Linker.nativeLinker();

    /** Whether the system loader (ld.so: its cache and default paths) is asked before the folders. */
    enum Order {
        /** For the driver: ld.so knows where the driver installed libcuda.so.1; folders are the fallback. */
        SYSTEM_LOADER_FIRST,
        /** For toolkit libraries: the folders the user pointed at win over whatever ld.so finds. */
        FOLDERS_FIRST
    }

    /** One way to load the library: a file, or a name for the system loader ({@code path} empty). */
    record Attempt(String name, Optional<Path> path) {
        @Override
        public String toString() {
            return path.map(Path::toString).orElse(name + " through the system loader");
        }
    }

    private final String library;
    private final SymbolLookup lookup;
    private final RuntimeException failure;
    private final Attempt origin;

    private Binder(String library, SymbolLookup lookup, RuntimeException failure, Attempt origin) {
        this.library = library;
        this.lookup = lookup;
        this.failure = failure;
        this.origin = origin;
    }

    /**
     * Loads the first of {@link #attempts} that loads; one that fails (a broken or foreign file)
     * does not stop the search. When none loads, every bound function throws an error listing
     * where it looked and why each attempt failed.
     */
    static Binder load(String what, LibraryLocator locator, List<String> fileNames, Order order) {
        List<String> failures = new ArrayList<>();
        for (Attempt attempt : attempts(locator, fileNames, order)) {
            try {
                SymbolLookup lookup = attempt.path().isPresent()
                        ? SymbolLookup.libraryLookup(attempt.path().get(), Arena.global())
                        : SymbolLookup.libraryLookup(attempt.name(), Arena.global());
                return new Binder(what, lookup, null, attempt);
            } catch (IllegalArgumentException e) {
                // The system loader not knowing a name is the normal way of saying "not installed".
                if (attempt.path().isPresent()) {
                    failures.add(attempt + " could not be loaded: " + e.getMessage());
                }
            }
        }
        return new Binder(what, null, locator.notFound(what, fileNames, failures), null);
    }

    /** What {@link #load} tries, in order. */
    static List<Attempt> attempts(LibraryLocator locator, List<String> fileNames, Order order) {
        List<Attempt> system = fileNames.stream().map(n -> new Attempt(n, Optional.empty())).toList();
        List<Attempt> files = locator.candidates(fileNames).stream()
                .map(p -> new Attempt(p.getFileName().toString(), Optional.of(p))).toList();
        return order == Order.SYSTEM_LOADER_FIRST
                ? Stream.concat(system.stream(), files.stream()).toList()
                : Stream.concat(files.stream(), system.stream()).toList();
    }

    /** The loading error, or empty when the library is loaded. */
    Optional<RuntimeException> failure() {
        return Optional.ofNullable(failure);
    }

    /** The file name the library was loaded by (e.g. {@code libcublasLt.so.13}), or empty if it was not. */
    Optional<String> loadedName() {
        return Optional.ofNullable(origin).map(Attempt::name);
    }

    /**
     * The file the library was loaded from, when known: the path it was loaded by, else the file
     * of its name that the process has mapped (from {@code /proc/self/maps}).
     */
    Optional<Path> loadedFrom() {
        if (origin == null) {
            return Optional.empty();
        }
        return origin.path().or(() -> mappedFile(origin.name()));
    }

    /**
     * The first file mapped into this process whose name starts with {@code fileName}'s stem up to
     * {@code .so} ({@code libcuda.so.1} matches the {@code libcuda.so.580.65.06} it links to).
     */
    static Optional<Path> mappedFile(String fileName) {
        int so = fileName.indexOf(".so");
        String stem = so < 0 ? fileName : fileName.substring(0, so + 3);
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.map(line -> line.split("\\s+", 6))
                    .filter(f -> f.length == 6 && f[5].startsWith("/"))
                    .map(f -> Path.of(f[5].strip()))
                    .filter(p -> p.getFileName().toString().startsWith(stem))
                    .findFirst();
        } catch (IOException | RuntimeException e) {
            return Optional.empty();  // not Linux, or not readable: the caller names the library instead
        }
    }

    /** A downcall handle for {@code name}, or one that throws why it cannot be called. */
    MethodHandle bind(String name, FunctionDescriptor descriptor) {
        return bindFirst(List.of(name), descriptor);
    }

    /**
     * A downcall handle for the first of {@code names} the library has (e.g. a newer versioned entry
     * point, then the older one that drivers before it export), or one that throws.
     */
    MethodHandle bindFirst(List<String> names, FunctionDescriptor descriptor) {
        RuntimeException error = failure;
        if (error == null) {
            for (String name : names) {
                Optional<MemorySegment> symbol = lookup.find(name);
                if (symbol.isPresent()) {
                    return LINKER.downcallHandle(symbol.get(), descriptor);
                }
            }
            error = new LibraryNotFoundException(library + " has no function " + String.join(" or ", names)
                    + "; it is older than the CUDA 12 this code is written for");
        }
        MethodType type = descriptor.toMethodType();
        MethodHandle thrower = MethodHandles.throwException(type.returnType(), RuntimeException.class).bindTo(error);
        return MethodHandles.dropArguments(thrower, 0, type.parameterList());
    }

    /** Rethrows what a handle's {@code invokeExact} threw, unchecked. */
    static RuntimeException unchecked(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException(t);
    }
}
