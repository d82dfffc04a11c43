package dev.anvil.kernels.cpu;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

// A separate thread, so that a pool spinning in a deadlock is reported as a failure rather than hanging the build.
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class WorkerPoolTest {

    private WorkerPool pool;

    @BeforeEach
    void open() {
        pool = new WorkerPool(2);
    }

    @AfterEach
    void close() {
        pool.close();
    }

    private static void assertEachIndexOnce(WorkerPool p, int count, int grain) {
        AtomicIntegerArray visits = new AtomicIntegerArray(Math.max(count, 0));
        p.forEach(count, grain, (start, end) -> {
            assertTrue(0 <= start && start < end && end <= count, "chunk [" + start + ", " + end + ")");
            for (int i = start; i < end; i++) {
                visits.incrementAndGet(i);
            }
        });
        for (int i = 0; i < count; i++) {
            assertEquals(1, visits.get(i), "index " + i + " of count " + count + ", grain " + grain);
        }
    }

    @Test
    void everyIndexIsVisitedExactlyOnce() {
        int[] counts = {0, 1, 2, 3, 7, 8, 63, 64, 65, 1000, 4097, 100_003};
        int[] grains = {1, 2, 3, 7, 64, 1000, 1 << 20};
        for (int count : counts) {
            for (int grain : grains) {
                assertEachIndexOnce(pool, count, grain);
            }
        }
    }

    @Test
    void everyIndexIsVisitedExactlyOnceWithMoreThreadsThanCores() {
        try (WorkerPool wide = new WorkerPool(Runtime.getRuntime().availableProcessors() + 2)) {
            for (int count : new int[]{1, 9, 100, 10_007}) {
                for (int grain : new int[]{1, 5, 64}) {
                    assertEachIndexOnce(wide, count, grain);
                }
            }
        }
    }

    @Test
    void defaultGrainVisitsEveryIndexOnce() {
        for (int count : new int[]{1, 5, 12, 13, 999, 50_000}) {
            AtomicIntegerArray visits = new AtomicIntegerArray(count);
            pool.forEach(count, (start, end) -> {
                for (int i = start; i < end; i++) {
                    visits.incrementAndGet(i);
                }
            });
            for (int i = 0; i < count; i++) {
                assertEquals(1, visits.get(i), "index " + i + " of " + count);
            }
        }
    }

    @Test
    void manyConsecutiveLoopsEachCompleteBeforeReturning() {
        long[] sums = new long[1];
        for (int round = 0; round < 500; round++) {
            int count = 1 + round % 97;
            AtomicInteger seen = new AtomicInteger();
            pool.forEach(count, 1, (s, e) -> seen.addAndGet(e - s));
            assertEquals(count, seen.get(), "round " + round);
            sums[0] += seen.get();
        }
        assertTrue(sums[0] > 0);
    }

    @Test
    void workIsSpreadOverSeveralThreads() {
        Set<Thread> threads = ConcurrentHashMap.newKeySet();
        for (int attempt = 0; attempt < 50 && threads.size() < 2; attempt++) {
            pool.forEach(64, 1, (s, e) -> {
                threads.add(Thread.currentThread());
                long until = System.nanoTime() + 200_000; // long enough for a worker to take a chunk
                while (System.nanoTime() < until) {
                    Thread.onSpinWait();
                }
            });
        }
        assertTrue(threads.size() >= 2, "only " + threads + " ran chunks");
    }

    @Test
    void eachThreadTakesItsOwnRangeOfChunksFirst() throws InterruptedException {
        // Four chunks on two threads: the caller owns 0 and 1, the worker 2 and 3. Chunks 0 and 2 each wait
        // for the other to start, and so do 1 and 3, so each thread must be in its own range while the other
        // is in its own. Handed out from one shared counter, the worker would take chunk 1 while the caller
        // is in 0, and nobody would start 2.
        CountDownLatch[] started = {new CountDownLatch(1), new CountDownLatch(1), new CountDownLatch(1),
                new CountDownLatch(1)};
        Thread[] ranOn = new Thread[4];
        int[] waitsFor = {2, 3, 0, 1};
        pool.forEach(4, 1, (s, e) -> {
            ranOn[s] = Thread.currentThread();
            started[s].countDown();
            try {
                assertTrue(started[waitsFor[s]].await(20, TimeUnit.SECONDS),
                        "chunk " + waitsFor[s] + " never started while chunk " + s + " ran");
            } catch (InterruptedException ex) {
                throw new IllegalStateException(ex);
            }
        });
        Thread caller = Thread.currentThread();
        assertSame(caller, ranOn[0]);
        assertSame(caller, ranOn[1]);
        assertTrue(ranOn[2] != caller && ranOn[2] == ranOn[3], "chunks 2 and 3 ran on " + ranOn[2] + ", " + ranOn[3]);
    }

    @Test
    void anExceptionInABodyIsRethrownToTheCallerAndThePoolStaysUsable() {
        for (int round = 0; round < 20; round++) {
            int failAt = (round * 37) % 1000;
            IllegalStateException e = assertThrows(IllegalStateException.class, () ->
                    pool.forEach(1000, 7, (s, end) -> {
                        if (s <= failAt && failAt < end) {
                            throw new IllegalStateException("boom at " + failAt);
                        }
                    }));
            assertEquals("boom at " + failAt, e.getMessage());
            assertEachIndexOnce(pool, 1000, 7);
        }
        // an Error too
        AssertionError err = assertThrows(AssertionError.class, () ->
                pool.forEach(100, 1, (s, end) -> {
                    if (s == 50) {
                        throw new AssertionError("error at 50");
                    }
                }));
        assertEquals("error at 50", err.getMessage());
        assertEachIndexOnce(pool, 100_003, 13);
    }

    @Test
    void anExceptionOnTheInlinePathIsRethrown() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                pool.forEach(5, 10, (s, end) -> {
                    throw new IllegalArgumentException("inline");
                }));
        assertEquals("inline", e.getMessage());
        assertEachIndexOnce(pool, 50, 1);
    }

    @Test
    void aNestedForEachRunsInlineOnTheCallingThread() {
        int outer = 40, inner = 500;
        AtomicIntegerArray visits = new AtomicIntegerArray(outer * inner);
        List<String> violations = Collections.synchronizedList(new ArrayList<>());
        pool.forEach(outer, 1, (s, e) -> {
            for (int o = s; o < e; o++) {
                Thread me = Thread.currentThread();
                AtomicInteger calls = new AtomicInteger();
                int row = o;
                pool.forEach(inner, 1, (is, ie) -> {
                    calls.incrementAndGet();
                    if (Thread.currentThread() != me) {
                        violations.add("inner loop of " + row + " ran on " + Thread.currentThread());
                    }
                    if (is != 0 || ie != inner) {
                        violations.add("inner loop of " + row + " was split: [" + is + ", " + ie + ")");
                    }
                    for (int i = is; i < ie; i++) {
                        visits.incrementAndGet(row * inner + i);
                    }
                });
                if (calls.get() != 1) {
                    violations.add("inner loop of " + row + " ran its body " + calls.get() + " times");
                }
            }
        });
        assertEquals(List.of(), violations);
        for (int i = 0; i < outer * inner; i++) {
            assertEquals(1, visits.get(i), "index " + i);
        }
        // and the pool still runs parallel loops afterwards
        assertEachIndexOnce(pool, 10_000, 3);
    }

    @Test
    void aSingleThreadPoolRunsEverythingOnTheCaller() {
        try (WorkerPool one = new WorkerPool(1)) {
            assertEquals(1, one.threads());
            Thread me = Thread.currentThread();
            AtomicInteger calls = new AtomicInteger();
            one.forEach(1000, 1, (s, e) -> {
                assertSame(me, Thread.currentThread());
                assertEquals(0, s);
                assertEquals(1000, e);
                calls.incrementAndGet();
            });
            assertEquals(1, calls.get());
        }
        assertThrows(IllegalArgumentException.class, () -> new WorkerPool(0));
    }
}
