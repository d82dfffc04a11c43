package dev.anvil.collective.link;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import java.util.Optional;

/**
 * Linux futexes on words of a shared mapping, through {@code syscall(2)}: a thread waits in the kernel until another
 * process changes the word and wakes it, instead of spinning on a core the other process needs.
 */
final class Futex {
    private static final int FUTEX_WAIT = 0;
    private static final int FUTEX_WAKE = 1;
    private static final long SYS_FUTEX = sysFutex();
    private static final MethodHandle SYSCALL = syscall();

    private Futex() {
    }

    /** Whether futexes can be used here (Linux on x86_64 or aarch64). */
    static boolean available() {
        return SYSCALL != null;
    }

    /**
     * Sleeps while the int at {@code address} equals {@code expected}, at most as long as {@code timespec} (a
     * {@code struct timespec} this thread owns) says; returns early on a wake, a change or a signal.
     */
    static void await(long address, int expected, MemorySegment timespec, long nanos) {
        timespec.set(ValueLayout.JAVA_LONG, 0, nanos / 1_000_000_000L);
        timespec.set(ValueLayout.JAVA_LONG, 8, nanos % 1_000_000_000L);
        call(address, FUTEX_WAIT, expected, timespec.address());
    }

    /** Wakes every thread waiting on the int at {@code address}. */
    static void wake(long address) {
        call(address, FUTEX_WAKE, Integer.MAX_VALUE, 0L);
    }

    private static void call(long address, int op, int value, long timespec) {
        try {
            long ignored = (long) SYSCALL.invokeExact(SYS_FUTEX, address, (long) op, (long) value, timespec, 0L, 0L);
        } catch (Throwable e) {
            throw new IllegalStateException("futex system call failed", e);
        }
    }

    private static long sysFutex() {
        return switch (System.getProperty("os.arch").toLowerCase(Locale.ROOT)) {
            case "amd64", "x86_64" -> 202;
            case "aarch64" -> 98;
            default -> -1;
        };
    }

    private static MethodHandle syscall() {
        if (SYS_FUTEX < 0 || !System.getProperty("os.name").toLowerCase(Locale.ROOT).contains("linux")) {
            return null;
        }
        Linker linker = Linker.nativeLinker();
        Optional<MemorySegment> symbol = linker.defaultLookup().find("syscall");
        if (symbol.isEmpty()) {
            return null;
        }
        // long syscall(long number, ...): every argument passed as a long, as the kernel reads registers.
        ValueLayout l = ValueLayout.JAVA_LONG;
        return linker.downcallHandle(symbol.get(), FunctionDescriptor.of(l, l, l, l, l, l, l, l),
                Linker.Option.firstVariadicArg(1));
    }
}
