package dev.anvil.engine.launch;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A rank killed mid-training takes the job down promptly, and everyone says which rank it was. */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class LaunchFaultTest {

    private static final int COMM_TIMEOUT_SECONDS = 5;

    @TempDir
    Path dir;

    @Test
    void sigkillOfOneRankFailsTheOtherWithinTheCommTimeoutAndTheLauncherNamesTheKilledRank() throws Exception {
        Path metrics = dir.resolve("metrics.jsonl");
        Path log = dir.resolve("launch.log");
        Process launcher = Jvm.start(log, Map.of(), Jvm.launch2(Jvm.train(200, dir.resolve("run"), metrics,
                "--save-every", "0", "--comm-timeout", Integer.toString(COMM_TIMEOUT_SECONDS))));
        long rank1 = Jvm.pidOf(launcher, log, 1);
        assertTrue(launcher.toHandle().children().anyMatch(p -> p.pid() == rank1), "rank 1 is not the launcher's child");
        Jvm.awaitSteps(launcher, metrics, 3, log);

        long killed = System.nanoTime();
        ProcessHandle.of(rank1).orElseThrow().destroyForcibly();
        int exit = Jvm.await(launcher, 60, log);
        double seconds = (System.nanoTime() - killed) / 1e9;
        String output = Files.readString(log);

        assertNotEquals(0, exit, output);
        // The survivor notices the lost connection at once; the comm timeout bounds it even when it does not.
        assertTrue(seconds < COMM_TIMEOUT_SECONDS + 10, "took " + seconds + " s:\n" + output);
        assertTrue(output.contains("[rank 0] anvil train: error: lost rank 1 (127.0.0.1:"), output);
        assertTrue(output.contains("anvil launch: failed: rank 1 (pid " + rank1 + ") was killed by SIGKILL (exit code 137)"),
                output);
        assertTrue(output.matches("(?s).*all exits: .*rank 0 \\(pid \\d+\\) exited with code 1.*"),
                "rank 0 should exit 1 with its error:\n" + output);
        assertEquals(0L, launcher.toHandle().descendants().count());
    }
}
