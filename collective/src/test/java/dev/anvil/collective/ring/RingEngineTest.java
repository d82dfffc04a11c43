package dev.anvil.collective.ring;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.anvil.collective.CollectiveException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class RingEngineTest {

    @Test
    void aConnectionClosingAfterTheEngineClosedIsNoError() {
        // A closing rank's links may report their neighbour's close after the engine itself closed: that report is
        // late news, neither an exception at exit nor a second failure replacing the close.
        RingEngine engine = new RingEngine(0, 2, 1 << 16, Duration.ofSeconds(5), List.of(), r -> "127.0.0.1:" + r,
                abort -> { });
        engine.close();
        assertDoesNotThrow(() -> engine.peerGone(new CollectiveException("connection closed")));
        assertEquals("the communicator of rank 0 was closed", engine.failure().getMessage());
    }
}
