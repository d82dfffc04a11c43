package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class FinishTest {
    // Held strongly: java.util.logging keeps loggers only weakly.
    private static final Logger COLLECTIVE_LOG = Logger.getLogger("dev.anvil.collective");

    @Test
    void ranksThatFinishThenCloseAtOnceAllReturnAndNoneReportsALostRank() throws Exception {
        List<String> warnings = new CopyOnWriteArrayList<>();
        Handler capture = new Handler() {
            @Override
            public void publish(LogRecord record) {
                if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                    warnings.add(record.getMessage() + " " + List.of(record.getParameters() == null
                            ? new Object[0] : record.getParameters()));
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        COLLECTIVE_LOG.addHandler(capture);
        try {
            // Several rounds: which rank leaves first, and what a neighbour still awaits then, varies run to run.
            for (int round = 0; round < 5; round++) {
                try (LocalCluster cluster = LocalCluster.start(3, AllReduceTest.testOptions());
                     ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
                    List<Future<?>> ranks = new ArrayList<>();
                    for (Communicator rank : cluster.ranks()) {
                        ranks.add(threads.submit(() -> {
                            MemorySegment grads = Arena.ofAuto().allocate(1 << 20);
                            rank.allReduce(grads, ElementType.FLOAT32, ReduceOp.SUM); // the last training step
                            rank.finish();
                            rank.close(); // at once, like a rank with nothing left to write
                            return null;
                        }));
                    }
                    for (Future<?> rank : ranks) {
                        rank.get(); // rethrows a finish that failed because a neighbour left first
                    }
                }
            }
        } finally {
            COLLECTIVE_LOG.removeHandler(capture);
        }
        assertEquals(List.of(), warnings);
    }
}
