package dev.anvil.engine.launch;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --max-restarts}: a job that loses a rank restarts its ranks from the last checkpoint and
 * ends exactly where an uninterrupted job ends.
 */
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class LaunchRestartTest {

    private static final int STEPS = 30;

    @TempDir
    Path dir;

    @Test
    void restartAfterAKilledRankResumesFromTheCheckpointAndReachesTheUninterruptedRunsLossesExactly() throws Exception {
        Path referenceMetrics = dir.resolve("reference.jsonl");
        Path referenceLog = dir.resolve("reference.log");
        Process reference = Jvm.start(referenceLog, Map.of(),
                Jvm.launch2(Jvm.train(STEPS, dir.resolve("reference"), referenceMetrics, "--save-every", "0")));
        assertEquals(0, Jvm.await(reference, 120, referenceLog), Files.readString(referenceLog));
        List<JsonNode> expected = Jvm.metrics(referenceMetrics);
        assertEquals(STEPS, expected.size());

        Path metrics = dir.resolve("restarted.jsonl");
        Path log = dir.resolve("restarted.log");
        Process launcher = Jvm.start(log, Map.of(), Jvm.launch2(Jvm.train(STEPS, dir.resolve("restarted"), metrics,
                "--save-every", "5", "--comm-timeout", "5"), "--max-restarts", "1"));
        long rank1 = Jvm.pidOf(launcher, log, 1);
        Jvm.awaitSteps(launcher, metrics, 7, log);
        ProcessHandle.of(rank1).orElseThrow().destroyForcibly();
        int exit = Jvm.await(launcher, 150, log);
        String output = Files.readString(log);
        assertEquals(0, exit, output);
        assertTrue(output.contains("rank 1 (pid " + rank1 + ") was killed by SIGKILL (exit code 137); restart 1 of 1"),
                output);
        assertTrue(output.matches("(?s).*\\[rank 0] resuming from \\S+step_000000(05|10|15) after step (5|10|15).*"),
                output);

        // The resumed run's lines replace the killed run's from its checkpoint on, recomputed with the
        // very same bits.
        List<JsonNode> lines = Jvm.metrics(metrics);
        assertEquals(STEPS, lines.getLast().get("step").asInt(), output);
        for (JsonNode line : lines) {
            JsonNode ref = expected.get(line.get("step").asInt() - 1);
            assertEquals(ref.get("loss").asText(), line.get("loss").asText(), "loss of step " + line.get("step"));
        }
        assertEquals(expected.getLast().get("loss").asText(), lines.getLast().get("loss").asText(), "final loss");
    }
}
