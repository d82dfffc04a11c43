package dev.anvil.engine.launch;

import dev.anvil.engine.cli.Cli;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A rank that is alive but silent (SIGSTOP: a hung node, a process stuck in the kernel) stops the job like a dead
 * one: every other rank fails within {@code --comm-timeout} naming it, and the launcher kills it after its grace
 * period, since it cannot act on SIGTERM.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class LaunchStoppedRankTest {

    private static final int COMM_TIMEOUT_SECONDS = 5;
    private static final int GRACE_SECONDS = 5;
    /**
     * Slack on top of the timeouts for a loaded CI machine (a JVM that notices late, a launcher that polls): the
     * bounds check that the job ends because of the timeouts, not that it ends fast.
     */
    private static final double SLACK_SECONDS = 20;

    @TempDir
    Path dir;

    @Test
    void aStoppedRankFailsTheOthersWithinTheCommTimeoutNamingItAndTheLauncherKillsItAfterTheGracePeriod()
            throws Exception {
        Path metrics = dir.resolve("metrics.jsonl");
        Path log = dir.resolve("launch.log");
        Path data = dir.resolve("tokens.bin"); // small: three ranks tokenizing the embedded corpus take long
        Cli.writeRandomShard(data, 20_000, 256);
        Process launcher = Jvm.start(log, Map.of(), Jvm.launch(3, Jvm.train(500, dir.resolve("run"), metrics,
                "--data", data.toString(), "--save-every", "0", "--comm-timeout", Integer.toString(COMM_TIMEOUT_SECONDS)),
                "--grace-period", Integer.toString(GRACE_SECONDS)));
        List<ProcessHandle> ranks = List.of(rank(launcher, log, 0), rank(launcher, log, 1), rank(launcher, log, 2));
        try {
            Jvm.awaitSteps(launcher, metrics, 3, log);
            List<CompletableFuture<Long>> exited = ranks.stream()
                    .map(r -> r.onExit().thenApply(p -> System.nanoTime())).toList();
            long stopped = System.nanoTime();
            signal("STOP", ranks.get(1));

            int exit = Jvm.await(launcher, 120, log);
            String output = Files.readString(log);
            assertEquals(1, exit, output);
            for (int r : new int[] {0, 2}) {
                double seconds = (exited.get(r).get(10, TimeUnit.SECONDS) - stopped) / 1e9;
                assertTrue(seconds < COMM_TIMEOUT_SECONDS + SLACK_SECONDS, "rank " + r + " took " + seconds + " s:\n"
                        + output);
                assertTrue(output.matches("(?s).*\\[rank " + r + "] anvil train: error: [^\\n]*\\brank 1\\b.*"),
                        "rank " + r + " should name rank 1 in its error:\n" + output);
            }
            long firstOther = Math.min(exited.get(0).get(), exited.get(2).get());
            double graceWaited = (exited.get(1).get(10, TimeUnit.SECONDS) - firstOther) / 1e9;
            assertTrue(graceWaited >= GRACE_SECONDS - 0.5 && graceWaited < GRACE_SECONDS + SLACK_SECONDS,
                    "rank 1 was killed " + graceWaited + " s after the first failure, grace period " + GRACE_SECONDS
                            + " s:\n" + output);
            assertTrue(output.contains("rank 1 (pid " + ranks.get(1).pid() + ") was killed by SIGKILL (exit code 137)"
                    + " after the launcher stopped it"), output);
            assertTrue(output.matches("(?s).*anvil launch: failed: rank [02] \\(pid \\d+\\) exited with code 1.*"),
                    "the launcher should blame a rank that reported the stopped one:\n" + output);
            assertEquals(0L, launcher.toHandle().descendants().count());
        } finally {
            ranks.forEach(ProcessHandle::destroyForcibly); // SIGKILL ends a stopped process too
        }
    }

    private static ProcessHandle rank(Process launcher, Path log, int rank) throws Exception {
        return ProcessHandle.of(Jvm.pidOf(launcher, log, rank)).orElseThrow();
    }

    private static void signal(String name, ProcessHandle process) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
        assertEquals(0, kill.waitFor(), "kill -" + name + " " + process.pid());
    }
}
