package dev.anvil.bench.blas;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class AlternatingTimerTest {

    /** A clock that moves only when a call says so. */
    private long now;

    @Test
    void sidesTakeTurnsOpeningRounds() {
        StringBuilder calls = new StringBuilder();
        AlternatingTimer timer = new AlternatingTimer(() -> now);
        Runnable a = () -> {
            calls.append('a');
            now += 10;
        };
        Runnable b = () -> {
            calls.append('b');
            now += 10;
        };
        // Windows of 25 ns hold three 10 ns calls; rounds open with a, b, a, b.
        timer.time(a, b, 4, 25);
        assertEquals("aaabbb" + "bbbaaa" + "aaabbb" + "bbbaaa", calls.toString());
    }

    @Test
    void eachSideReportsItsOwnFastestAndMedianCall() {
        AlternatingTimer timer = new AlternatingTimer(() -> now);
        long[] slowCalls = {50, 30, 40};
        int[] next = {0};
        Runnable fast = () -> now += 7;
        Runnable slow = () -> now += slowCalls[next[0]++ % slowCalls.length];
        AlternatingTimer.Calls[] calls = timer.time(fast, slow, 3, 60);
        assertEquals(7, calls[0].fastest());
        assertEquals(7, calls[0].median());
        assertEquals(30, calls[1].fastest());
        assertEquals(40, calls[1].median());
        // Every window holds calls until it has run its length: 60 ns of 7 ns calls is 9 calls.
        assertEquals(27, calls[0].nanos().length);
    }

    @Test
    void aWindowShorterThanACallStillTimesOneCall() {
        AlternatingTimer timer = new AlternatingTimer(() -> now);
        AlternatingTimer.Calls[] calls = timer.time(() -> now += 100, () -> now += 200, 2, 0);
        assertArrayEquals(new long[] {100, 100}, calls[0].nanos());
        assertArrayEquals(new long[] {200, 200}, calls[1].nanos());
    }

    @Test
    void refusesNoRounds() {
        AlternatingTimer timer = new AlternatingTimer(() -> now);
        assertThrows(IllegalArgumentException.class, () -> timer.time(() -> { }, () -> { }, 0, 10));
    }
}
