package dev.anvil.collective.link;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Segment files: those of dead processes are swept, a mapping checks what it maps. */
class ShmFifoTest {

    @Test
    void segmentLeftByADeadProcessIsRemovedByTheNextRankThatCreatesOne() throws Exception {
        assumeTrue(ShmFifo.supported(), "needs Linux with /dev/shm");
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        Path stale = Files.createFile(Path.of("/dev/shm/anvil-" + gone.pid() + "-deadbeef"));
        Path live = Files.createFile(Path.of("/dev/shm/anvil-" + ProcessHandle.current().pid() + "-alive"));
        try (ShmFifo fifo = ShmFifo.create(2, 4096)) {
            assertFalse(Files.exists(stale), "the dead process's segment must be removed");
            assertTrue(Files.exists(live), "a live process's segment must stay");
            assertTrue(Files.exists(Path.of(fifo.path())));
            fifo.unlink();
            assertFalse(Files.exists(Path.of(fifo.path())));
        } finally {
            Files.deleteIfExists(stale);
            Files.deleteIfExists(live);
        }
    }

    @Test
    void attachingChecksThatTheSegmentIsTheAnnouncedFifo() throws Exception {
        assumeTrue(ShmFifo.supported(), "needs Linux with /dev/shm");
        try (ShmFifo fifo = ShmFifo.create(2, 4096)) {
            IOException wrong = assertThrows(IOException.class, () -> ShmFifo.attach(fifo.path(), 4, 4096));
            assertTrue(wrong.getMessage().contains("expected"), wrong.getMessage());
            assertThrows(IOException.class, () -> ShmFifo.attach("/etc/passwd", 2, 4096));
            ShmFifo.attach(fifo.path(), 2, 4096).close();
        }
    }
}
