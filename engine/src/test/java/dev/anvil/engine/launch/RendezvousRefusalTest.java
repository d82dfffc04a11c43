package dev.anvil.engine.launch;

import dev.anvil.collective.LocalCluster;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Processes that must not join a job are turned away at the rendezvous with a message that says
 * what to fix: no token, another job's token, another model or training setup.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class RendezvousRefusalTest {

    @TempDir
    Path dir;

    private final int port = LocalCluster.freePort();

    /** {@code anvil train} as rank {@code rank} of 2 at this test's master port. */
    private List<String> rank(int rank, String... more) {
        List<String> args = new ArrayList<>(Jvm.train(5, dir.resolve("run" + rank), dir.resolve("m" + rank + ".jsonl"),
                "--master", "127.0.0.1:" + port, "--rank", Integer.toString(rank), "--world-size", "2"));
        args.addAll(List.of(more));
        return args;
    }

    @Test
    void aRankWithoutTheJobTokenStopsAndSaysToSetIt() throws Exception {
        Path log = dir.resolve("rank1.log");
        Process rank1 = Jvm.start(log, Map.of(), rank(1));
        assertEquals(1, Jvm.await(rank1, 60, log));
        assertTrue(Files.readString(log).contains("anvil train: error: no job token: set ANVIL_JOB_TOKEN (or"
                + " ANVIL_JOB_TOKEN_FILE to a file holding it) to the same secret on every rank"), Files.readString(log));
    }

    @Test
    void aRankWithAnotherJobsTokenIsRefusedByTheCoordinator() throws Exception {
        Path log0 = dir.resolve("rank0.log");
        Path log1 = dir.resolve("rank1.log");
        Process rank0 = Jvm.start(log0, Map.of("ANVIL_JOB_TOKEN", "this-job"), rank(0));
        try {
            Process rank1 = Jvm.start(log1, Map.of("ANVIL_JOB_TOKEN", "another-job"), rank(1));
            assertEquals(1, Jvm.await(rank1, 60, log1));
            String output = Files.readString(log1);
            assertTrue(output.contains("anvil train: error: coordinator at 127.0.0.1:" + port + " refused rank 1: wrong"
                    + " job token from /127.0.0.1:"), output);
            assertTrue(output.contains("every rank must use the same ANVIL_JOB_TOKEN"), output);
            assertTrue(rank0.isAlive(), "rank 0 keeps waiting for the real rank 1:\n" + Files.readString(log0));
        } finally {
            rank0.destroyForcibly();
        }
    }

    @Test
    void aRankWithAnotherTrainingSetupIsRefusedAndBothRanksSayWhatDiffers() throws Exception {
        Path log0 = dir.resolve("rank0.log");
        Path log1 = dir.resolve("rank1.log");
        Map<String, String> token = Map.of("ANVIL_JOB_TOKEN", "same-job");
        Process rank0 = Jvm.start(log0, token, rank(0));
        Process rank1 = Jvm.start(log1, token, rank(1, "--lr", "3e-4"));
        assertEquals(1, Jvm.await(rank1, 60, log1));
        assertEquals(1, Jvm.await(rank0, 60, log0));
        for (Path log : List.of(log0, log1)) {
            String output = Files.readString(log);
            assertTrue(output.contains("fingerprint mismatch: rank 1 differs from rank 0"), output);
            assertTrue(output.contains("run every rank with the same model configuration and code version"), output);
        }
    }
}
