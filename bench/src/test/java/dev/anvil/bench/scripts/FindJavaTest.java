package dev.anvil.bench.scripts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * mvnw and bin/anvil find a Java 25 by themselves (bin/find-java), with an older java first on the PATH, or stop
 * with one line saying what to install. The JDK 25 running this test stands for one installed "elsewhere".
 */
@Tag("scripts") // run after packaging: see bench/pom.xml
@Timeout(180)
class FindJavaTest {
    private static final Path JDK_25 = Path.of(System.getProperty("java.home"));

    @TempDir
    Path dir;

    /** A user's environment: JAVA_HOME unset, a Java 17 first on the PATH, only {@code search} searched. */
    private Map<String, String> java17First(Path search) throws Exception {
        Path java17 = Shell.fakeJava(dir.resolve("path-java-17"), 17, true);
        return Map.of("PATH", java17.resolve("bin") + ":/usr/bin:/bin", "ANVIL_JAVA_SEARCH", search.toString());
    }

    @Test
    void withOnlyJava17AroundMvnwAndAnvilStopWithOneLineSayingWhereTheyLookedAndWhatToInstall() throws Exception {
        Path search = Files.createDirectories(dir.resolve("jvms"));
        Shell.fakeJava(search.resolve("java-17"), 17, true);
        Path javaHome17 = Shell.fakeJava(dir.resolve("home-17"), 17, true);
        Map<String, String> env = java17First(search);
        for (Map<String, String> e : List.of(env, with(env, "JAVA_HOME", javaHome17.toString()))) {
            for (String command : List.of("./mvnw --version", "bin/anvil --version", "bin/launch --help")) {
                Shell.Result r = Shell.bash(Shell.ROOT, e, 60, command);
                assertEquals(1, r.exit(), command + ": " + r);
                assertEquals(1, r.errLines().size(), command + ": " + r);
                String line = r.errLines().getFirst();
                assertTrue(line.contains("Anvil needs a JDK 25 or newer"), line);
                assertTrue(line.contains("java on the PATH (" + dir.resolve("path-java-17/bin/java") + ") is Java 17"),
                        line);
                assertTrue(line.contains("none is in " + search), line);
                assertTrue(line.contains("https://adoptium.net/"), line);
                assertTrue(!e.containsKey("JAVA_HOME") || line.contains("JAVA_HOME (" + javaHome17 + ") is Java 17"),
                        line);
            }
        }
    }

    @Test
    void withJava17FirstOnThePathMvnwAndAnvilRunOnAJdk25InAnInstallFolder() throws Exception {
        Path search = Files.createDirectories(dir.resolve("jvms"));
        Shell.fakeJava(search.resolve("java-17"), 17, true);
        Path link = Files.createSymbolicLink(search.resolve("jdk-25"), JDK_25);
        try {
            Map<String, String> env = java17First(search);

            Shell.Result maven = Shell.bash(Shell.ROOT, env, 120, "./mvnw --version");
            assertEquals(0, maven.exit(), maven.toString());
            assertTrue(maven.out().contains("Java version: " + Runtime.version().feature()), maven.toString());

            Shell.Result anvil = Shell.bash(Shell.ROOT, env, 60, "bin/anvil --version");
            assertEquals(0, anvil.exit(), anvil.toString());
            assertEquals(List.of(), anvil.errLines(), anvil.toString());
        } finally {
            Files.delete(link); // not the JDK it points to
        }
    }

    @Test
    void javaHomeWinsWhenItIsNewEnoughElseTheOldestFittingInstallAndMvnwSkipsOnesWithoutJavac() throws Exception {
        Path search = Files.createDirectories(dir.resolve("jvms"));
        Path jre25 = Shell.fakeJava(search.resolve("jre-25"), 25, false);
        Path jdk26 = Shell.fakeJava(search.resolve("jdk-26"), 26, true);
        Path jdk27 = Shell.fakeJava(search.resolve("jdk-27"), 27, true);
        Map<String, String> env = java17First(search);
        assertEquals(jdk26.toString(), found(env, "jdk"));
        assertEquals(jre25.toString(), found(env, ""));
        assertEquals(jdk27.toString(), found(with(env, "JAVA_HOME", jdk27.toString()), "jdk"));
    }

    /** The JAVA_HOME that bin/find-java settles on, for a JDK ("jdk") or a runtime (""). */
    private static String found(Map<String, String> env, String kind) throws Exception {
        Shell.Result r = Shell.bash(Shell.ROOT, env, 30,
                ". bin/find-java && anvil_find_java test " + kind + " && echo \"$JAVA_HOME\"");
        assertEquals(0, r.exit(), r.toString());
        return r.out().strip();
    }

    private static Map<String, String> with(Map<String, String> env, String key, String value) {
        Map<String, String> copy = new HashMap<>(env);
        copy.put(key, value);
        return copy;
    }
}
