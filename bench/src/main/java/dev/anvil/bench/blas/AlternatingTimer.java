package dev.anvil.bench.blas;

import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * Times two calls in alternating windows of the same length, so that a slow spell of a shared or
 * virtual machine (other tenants, frequency changes) falls on both sides alike, and each side's
 * figures are the fastest and the median of its single calls over all its windows. The side that
 * goes first changes every round: neither always runs right after the other.
 */
final class AlternatingTimer {

    /** The times of one side's single calls, in nanoseconds. */
    record Calls(long[] nanos) {

        Calls {
            if (nanos.length == 0) {
                throw new IllegalArgumentException("no calls were timed");
            }
            nanos = nanos.clone();
            Arrays.sort(nanos);
        }

        long fastest() {
            return nanos[0];
        }

        long median() {
            return nanos[nanos.length / 2];
        }
    }

    private final LongSupplier clock;

    /** Windows timed with {@code clock} (nanoseconds; {@link System#nanoTime} outside tests). */
    AlternatingTimer(LongSupplier clock) {
        this.clock = clock;
    }

    /**
     * {@code rounds} rounds of one window of calls of each side, every window at least
     * {@code windowNanos} long and holding at least one call; {@code first} opens the even rounds,
     * {@code second} the odd ones. Returns {@code [first's calls, second's calls]}.
     */
    Calls[] time(Runnable first, Runnable second, int rounds, long windowNanos) {
        if (rounds < 1 || windowNanos < 0) {
            throw new IllegalArgumentException("need at least one round and a window of zero or more, got "
                    + rounds + " rounds of " + windowNanos + " ns");
        }
        Runnable[] sides = {first, second};
        long[][] times = {new long[16], new long[16]};
        int[] counts = new int[2];
        for (int round = 0; round < rounds; round++) {
            for (int turn = 0; turn < 2; turn++) {
                int side = (round + turn) % 2;
                long end = clock.getAsLong() + windowNanos;
                do {
                    long start = clock.getAsLong();
                    sides[side].run();
                    long took = clock.getAsLong() - start;
                    if (counts[side] == times[side].length) {
                        times[side] = Arrays.copyOf(times[side], 2 * counts[side]);
                    }
                    times[side][counts[side]++] = took;
                } while (clock.getAsLong() < end);
            }
        }
        return new Calls[] {new Calls(Arrays.copyOf(times[0], counts[0])), new Calls(Arrays.copyOf(times[1], counts[1]))};
    }
}
