package dev.anvil.engine.launch;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the launcher hands each rank, checked without starting any. */
class LaunchSetupTest {

    @Test
    void eachLocalRankGetsTorchrunsVariablesWithItsGlobalRank() {
        Topology node1 = new Topology(2, 3, 1, "node0.example", 29400);
        assertEquals(6, node1.worldSize());
        assertEquals(Map.of("MASTER_ADDR", "node0.example", "MASTER_PORT", "29400", "RANK", "2", "WORLD_SIZE", "6",
                "LOCAL_RANK", "0", "LOCAL_WORLD_SIZE", "2"), node1.environment(0));
        assertEquals(Map.of("MASTER_ADDR", "node0.example", "MASTER_PORT", "29400", "RANK", "3", "WORLD_SIZE", "6",
                "LOCAL_RANK", "1", "LOCAL_WORLD_SIZE", "2"), node1.environment(1));
        assertEquals("29401", node1.withMasterPort(29401).environment(1).get("MASTER_PORT"));
    }

    @Test
    void aNodeRankOutsideTheJobIsRefusedNamingTheOption() {
        var e = assertThrows(IllegalArgumentException.class, () -> new Topology(2, 2, 2, "h", 1));
        assertTrue(e.getMessage().startsWith("--node-rank must be in 0..1"), e.getMessage());
    }

    @Test
    void aSingleNodeGetsAFreshRandomTokenAndAnExistingOneIsKept() {
        String token = LaunchCommand.tokenEnvironment(Map.of(), 1).get("ANVIL_JOB_TOKEN");
        assertTrue(token.matches("[0-9a-f]{64}"), token);
        assertNotEquals(token, LaunchCommand.tokenEnvironment(Map.of(), 1).get("ANVIL_JOB_TOKEN"));
        assertEquals(Map.of(), LaunchCommand.tokenEnvironment(Map.of("ANVIL_JOB_TOKEN", "s3cret"), 1));
        assertEquals(Map.of(), LaunchCommand.tokenEnvironment(Map.of("ANVIL_JOB_TOKEN_FILE", "/run/token"), 4));
    }

    @Test
    void severalNodesWithoutATokenAreToldToSetTheSameOneEverywhere() {
        var e = assertThrows(IllegalArgumentException.class, () -> LaunchCommand.tokenEnvironment(Map.of(), 2));
        assertTrue(e.getMessage().contains("same job token on every node: set ANVIL_JOB_TOKEN"), e.getMessage());
    }

    @Test
    void ranksRunTheSameJavaWithTheSameFlagsAndClassPath() {
        assertEquals(List.of("/jdk/bin/java", "--add-modules=jdk.incubator.vector", "-Xmx2g", "-cp", "a.jar:b.jar",
                        "dev.anvil.engine.cli.AnvilMain", "train", "--steps", "5"),
                JvmCommand.of("/jdk/bin/java", List.of("--add-modules=jdk.incubator.vector", "-Xmx2g"), "a.jar:b.jar",
                        "dev.anvil.engine.cli.AnvilMain", List.of("train", "--steps", "5")));
        List<String> current = JvmCommand.current("Main", List.of("x"));
        assertEquals(System.getProperty("java.class.path"), current.get(current.size() - 3));
        assertTrue(current.getFirst().startsWith(System.getProperty("java.home")), current.getFirst());
    }

    @Test
    void exitValuesAboveOneHundredTwentyEightAreNamedAsSignals() {
        assertEquals("was killed by SIGKILL (exit code 137)", ExitStatus.describe(137));
        assertEquals("was killed by SIGTERM (exit code 143)", ExitStatus.describe(143));
        assertEquals("exited with code 1", ExitStatus.describe(1));
    }
}
