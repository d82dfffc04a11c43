package dev.anvil.engine.launch;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The command line that starts another JVM like this one: same Java, JVM flags and class path. */
final class JvmCommand {

    private JvmCommand() {
    }

    /**
     * {@code java <this JVM's flags> -cp <this class path> mainClass args...}. The flags are the
     * current JVM's input arguments (from {@code bin/anvil}: the Vector API module, native access,
     * {@code ANVIL_JAVA_OPTS}), so every rank runs as the launcher was started.
     */
    static List<String> current(String mainClass, List<String> args) {
        return of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                ManagementFactory.getRuntimeMXBean().getInputArguments(), System.getProperty("java.class.path"),
                mainClass, args);
    }

    static List<String> of(String java, List<String> jvmFlags, String classPath, String mainClass, List<String> args) {
        List<String> command = new ArrayList<>();
        command.add(java);
        command.addAll(jvmFlags);
        command.add("-cp");
        command.add(classPath);
        command.add(mainClass);
        command.addAll(args);
        return command;
    }
}
