package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.anvil.collective.rendezvous.RendezvousConfig;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A job that ends well ends quietly: every rank's finish returns and nothing (ours or Netty's) warns of a loss. */
@Timeout(120)
class FinishTest {
    // Held strongly: java.util.logging keeps loggers only weakly.
    private static final Logger ROOT_LOG = Logger.getLogger("");

    private final List<String> warnings = new CopyOnWriteArrayList<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord record) {
            if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                warnings.add(record.getLoggerName() + ": " + record.getMessage() + " " + List.of(
                        record.getParameters() == null ? new Object[0] : record.getParameters()));
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    @BeforeEach
    void captureWarnings() {
        ROOT_LOG.addHandler(capture);
    }

    @AfterEach
    void stopCapturing() {
        ROOT_LOG.removeHandler(capture);
    }

    /** The end of a training run: a last gradient all-reduce, finish, then close at once. */
    private static Callable<Void> lastStepThenLeave(Communicator rank) {
        return () -> {
            MemorySegment grads = Arena.ofAuto().allocate(1 << 20);
            rank.allReduce(grads, ElementType.FLOAT32, ReduceOp.SUM);
            rank.finish();
            rank.close(); // at once, like a rank with nothing left to write
            return null;
        };
    }

    @Test
    void ranksThatFinishThenCloseAtOnceAllReturnAndNoneReportsALostRank() throws Exception {
        // Several rounds: which rank leaves first, and what a neighbour still awaits then, varies run to run.
        for (int round = 0; round < 5; round++) {
            try (LocalCluster cluster = LocalCluster.start(3, AllReduceTest.testOptions());
                 ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<Void>> ranks = new ArrayList<>();
                cluster.ranks().forEach(rank -> ranks.add(threads.submit(lastStepThenLeave(rank))));
                for (Future<Void> rank : ranks) {
                    rank.get(); // rethrows a finish that failed because a neighbour left first
                }
            }
        }
        assertEquals(List.of(), warnings);
    }

    @Test
    void ranksWithNetworkThreadsOfTheirOwnShutThemDownQuietly() throws Exception {
        // As separate processes: each rank's close also stops its own event loops, under its other channels.
        for (int round = 0; round < 3; round++) {
            int port = LocalCluster.freePort();
            CommunicatorOptions options = AllReduceTest.testOptions().withHost("127.0.0.1");
            try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<Void>> ranks = new ArrayList<>();
                for (int r = 0; r < 3; r++) {
                    RendezvousConfig config = RendezvousConfig.of("127.0.0.1", port, r, 3);
                    ranks.add(threads.submit(() -> lastStepThenLeave(NettyCommunicator.connect(config, options))
                            .call()));
                }
                for (Future<Void> rank : ranks) {
                    rank.get();
                }
            }
        }
        assertEquals(List.of(), warnings);
    }
}
