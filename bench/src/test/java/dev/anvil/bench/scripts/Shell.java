package dev.anvil.bench.scripts;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs the repository's scripts (mvnw, bin/*) as a user's shell would, in an environment the test controls. */
final class Shell {
    /** The repository's root (Maven's multi-module directory). */
    static final Path ROOT = Path.of(System.getProperty("anvil.root", "..")).toAbsolutePath().normalize();

    /** Variables of a developer's shell or a CI job that would change what the scripts do. */
    private static final List<String> SCRUBBED = List.of("JAVA_HOME", "ANVIL_JAVA_SEARCH", "ANVIL_JAVA_OPTS",
            "ANVIL_JOB_TOKEN", "ANVIL_JOB_TOKEN_FILE", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
            "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_ID", "MAVEN_ARGS");

    record Result(int exit, String out, String err) {
        /** The lines on stderr, less the JVM's notice about incubator modules. */
        List<String> errLines() {
            return err.lines().filter(l -> !l.isBlank() && !l.startsWith("WARNING: Using incubator modules")).toList();
        }

        @Override
        public String toString() {
            return "exit " + exit + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private Shell() {
    }

    /** Runs {@code script} with bash in {@code dir}, with the scrubbed environment plus {@code env}. */
    static Result bash(Path dir, Map<String, String> env, long timeoutSeconds, String script) throws Exception {
        ProcessBuilder builder = new ProcessBuilder("bash", "-c", script).directory(dir.toFile());
        SCRUBBED.forEach(builder.environment()::remove);
        builder.environment().putAll(env);
        Path out = Files.createTempFile("shell-out", ".txt");
        Path err = Files.createTempFile("shell-err", ".txt");
        try {
            Process p = builder.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                fail("still running after " + timeoutSeconds + " s: " + script + "\n" + Files.readString(out)
                        + Files.readString(err));
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /**
     * A fake Java home of {@code feature} version in {@code home}: a release file, and a {@code bin/java} that
     * answers {@code -XshowSettings} but, like a real Java 17, dies on Anvil's JVM options; {@code bin/javac} too
     * when {@code withJavac}.
     */
    static Path fakeJava(Path home, int feature, boolean withJavac) throws IOException {
        Files.createDirectories(home.resolve("bin"));
        Files.writeString(home.resolve("release"), "IMPLEMENTOR=\"fake\"\nJAVA_VERSION=\"" + feature + ".0.2\"\n");
        executable(home.resolve("bin/java"), String.join("\n",
                "#!/bin/sh",
                "case \"$*\" in",
                "  *-XshowSettings*) printf '    java.home = %s\\n    java.specification.version = %s\\n' '" + home
                        + "' " + feature + " >&2 ;;",
                "  *) echo 'Unrecognized option: --sun-misc-unsafe-memory-access=allow' >&2; exit 1 ;;",
                "esac", ""));
        if (withJavac) {
            executable(home.resolve("bin/javac"), "#!/bin/sh\nexit 1\n");
        }
        return home;
    }

    private static void executable(Path file, String text) throws IOException {
        Files.writeString(file, text);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
}
