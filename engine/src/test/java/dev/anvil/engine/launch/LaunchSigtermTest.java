package dev.anvil.engine.launch;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The launcher as an operator sees it: prefixed output, and SIGTERM handled like a preemption. */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class LaunchSigtermTest {

    @TempDir
    Path dir;

    @Test
    void sigtermToTheLauncherMakesEveryRankCheckpointAndExitZeroAndEveryChildLineIsPrefixedWithItsRank()
            throws Exception {
        Path metrics = dir.resolve("metrics.jsonl");
        Path log = dir.resolve("launch.log");
        Path saveDir = dir.resolve("run");
        Process launcher = Jvm.start(log, Map.of(), Jvm.launch2(Jvm.train(200, saveDir, metrics, "--save-every", "0")));
        Jvm.awaitSteps(launcher, metrics, 2, log);
        launcher.destroy(); // SIGTERM, as a scheduler's preemption would send
        int exit = Jvm.await(launcher, 90, log);
        String output = Files.readString(log);
        assertEquals(0, exit, output);

        Matcher stopped = Pattern.compile("(?m)^\\[rank 0] stopped by SIGTERM after step (\\d+); saved (\\S+)$")
                .matcher(output);
        assertTrue(stopped.find(), output);
        int step = Integer.parseInt(stopped.group(1));
        assertEquals(String.format("step_%08d", step), Path.of(stopped.group(2)).getFileName().toString());
        assertTrue(Files.isDirectory(saveDir.resolve(String.format("step_%08d", step))), output);
        assertTrue(output.contains("anvil launch: stopped by SIGTERM: every rank exited 0"), output);
        assertFalse(output.contains("ring broken"), "a normal end must not report a lost rank:\n" + output);

        // Each child line arrives whole, behind its rank's prefix; only the launcher's own JVM speaks unprefixed.
        assertTrue(output.contains("[rank 0] anvil train: GptConfig[L=2"), output);
        assertTrue(output.contains("[rank 0] batch: B=2 T=32 accum=1, 128 tokens per step"),
                "the ranks should see WORLD_SIZE 2:\n" + output);
        assertTrue(output.contains("[rank 1] WARNING: Using incubator modules"), output);
        List<String> stray = output.lines().filter(l -> !l.matches("\\[rank [01]] .*|anvil launch: .*")
                && !l.equals("WARNING: Using incubator modules: jdk.incubator.vector")).toList();
        assertEquals(List.of(), stray, output);
    }
}
