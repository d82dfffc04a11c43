package dev.anvil.engine.launch;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A rank killed mid-training takes the job down promptly, and everyone says which rank it was, whether gradients
 * travel over TCP or through shared memory; the killed rank leaves no shared-memory segment behind.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class LaunchFaultTest {

    private static final int COMM_TIMEOUT_SECONDS = 5;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "--transport {0}")
    @ValueSource(strings = {"tcp", "shm"})
    void sigkillOfOneRankFailsTheOtherWithinTheCommTimeoutAndTheLauncherNamesTheKilledRank(String transport)
            throws Exception {
        Path metrics = dir.resolve("metrics.jsonl");
        Path log = dir.resolve("launch.log");
        Process launcher = Jvm.start(log, Map.of(), Jvm.launch2(Jvm.train(200, dir.resolve("run"), metrics,
                "--save-every", "0", "--comm-timeout", Integer.toString(COMM_TIMEOUT_SECONDS),
                "--transport", transport)));
        long rank0 = Jvm.pidOf(launcher, log, 0);
        long rank1 = Jvm.pidOf(launcher, log, 1);
        assertTrue(launcher.toHandle().children().anyMatch(p -> p.pid() == rank1), "rank 1 is not the launcher's child");
        Jvm.awaitSteps(launcher, metrics, 3, log);
        // A segment's file is unlinked as soon as both neighbours mapped it: once training runs, nothing in /dev/shm
        // outlives the processes, however they end.
        assertEquals(List.of(), segmentsOf(rank0, rank1), "segment files while training");

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
        assertTrue(output.contains("over " + transport + " on"), "the ranks should log their " + transport
                + " data links:\n" + output);
        assertEquals(List.of(), segmentsOf(rank0, rank1), "segment files after the job");
    }

    /** Shared-memory segment files named for these processes. */
    private static List<Path> segmentsOf(long... pids) throws Exception {
        try (Stream<Path> files = Files.list(Path.of("/dev/shm"))) {
            return files.filter(f -> java.util.Arrays.stream(pids)
                    .anyMatch(pid -> f.getFileName().toString().startsWith("anvil-" + pid + "-"))).toList();
        }
    }
}
