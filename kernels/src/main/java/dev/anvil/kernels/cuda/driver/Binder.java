package dev.anvil.kernels.cuda.driver;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Loads one native library and binds its functions to downcall handles. When the library (or one
 * symbol) is missing, the handle still exists with the right type but throws the loading error, so
 * the bindings can be {@code static final} fields whether or not CUDA is installed.
 */
@SuppressWarnings("restricted")  // loading libraries and binding symbols is what this class is for
final class Binder {

    private static final Linker LINKER = Linker.nativeLinker();

    private final String library;
    private final SymbolLookup lookup;
    private final RuntimeException failure;

    private Binder(String library, SymbolLookup lookup, RuntimeException failure) {
        this.library = library;
        this.lookup = lookup;
        this.failure = failure;
    }

    /**
     * Loads the first of {@code fileNames} that {@code locator} finds, else asks the system loader
     * for each name (ld.so.cache knows where the driver put libcuda).
     */
    static Binder load(String what, LibraryLocator locator, List<String> fileNames) {
        Optional<Path> path = locator.find(fileNames);
        try {
            if (path.isPresent()) {
                return new Binder(what, SymbolLookup.libraryLookup(path.get(), Arena.global()), null);
            }
        } catch (IllegalArgumentException e) {
            return new Binder(what, null, new LibraryNotFoundException(
                    what + " at " + path.get() + " could not be loaded: " + e.getMessage()));
        }
        for (String name : fileNames) {
            try {
                return new Binder(what, SymbolLookup.libraryLookup(name, Arena.global()), null);
            } catch (IllegalArgumentException e) {
                // not known to the system loader either; try the next name
            }
        }
        return new Binder(what, null, locator.notFound(what, fileNames));
    }

    /** The loading error, or empty when the library is loaded. */
    Optional<RuntimeException> failure() {
        return Optional.ofNullable(failure);
    }

    /** A downcall handle for {@code name}, or one that throws why it cannot be called. */
    MethodHandle bind(String name, FunctionDescriptor descriptor) {
        RuntimeException error = failure;
        if (error == null) {
            Optional<MemorySegment> symbol = lookup.find(name);
            if (symbol.isPresent()) {
                return LINKER.downcallHandle(symbol.get(), descriptor);
            }
            error = new LibraryNotFoundException(library + " has no function " + name
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
