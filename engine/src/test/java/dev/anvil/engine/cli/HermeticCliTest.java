package dev.anvil.engine.cli;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The CLI test helpers are hermetic: run inside a Slurm allocation, a torchrun job or a shell that set
 * {@code ANVIL_JOB_TOKEN}, neither an in-process run nor a child JVM sees those variables, so no test's
 * {@code train} tries to join a data-parallel job.
 */
class HermeticCliTest {

    @Test
    void theTestJvmHasNoLauncherVariables() {
        assertEquals(List.of(), Cli.inheritedLauncherVariables(), "Maven's surefire configuration should drop them");
    }

    @Test
    void aChildJvmIsStartedWithoutAnyLauncherVariable() {
        Map<String, String> env = new HashMap<>(Map.of("PATH", "/usr/bin", "HOME", "/home/me", "LANG", "C.UTF-8"));
        Map<String, String> launcher = new HashMap<>();
        Cli.LAUNCHER_VARIABLES.forEach(name -> launcher.put(name, "1"));
        launcher.putAll(Map.of("SLURM_JOB_ID", "42", "SLURM_NODEID", "0", "MASTER_HOST", "node1",
                "ANVIL_SOMETHING_NEW", "x", "TORCHELASTIC_RUN_ID", "r"));
        Map<String, String> inherited = new HashMap<>(env);
        inherited.putAll(launcher);
        Cli.scrub(inherited);
        assertEquals(env, inherited);
    }
}
