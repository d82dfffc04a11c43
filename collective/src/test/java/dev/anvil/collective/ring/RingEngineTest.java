package dev.anvil.collective.ring;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;

import dev.anvil.collective.CollectiveException;
import io.netty.channel.DefaultEventLoop;
import io.netty.channel.EventLoop;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class RingEngineTest {

    @Test
    void aConnectionClosingAfterTheEnginesEventLoopStoppedIsNoError() throws Exception {
        // A closing rank stops its event loops one after the other: a channel on the second may report its close
        // after the engine's loop is gone. Netty would log the exception as a warning at every normal exit.
        EventLoop loop = new DefaultEventLoop();
        RingEngine engine = new RingEngine(0, 2, 1 << 16, Duration.ofSeconds(5), loop, r -> "127.0.0.1:" + r,
                abort -> { });
        engine.close();
        loop.shutdownGracefully(0, 0, TimeUnit.SECONDS).sync();
        assertDoesNotThrow(() -> engine.peerGone(new CollectiveException("connection closed")));
    }
}
