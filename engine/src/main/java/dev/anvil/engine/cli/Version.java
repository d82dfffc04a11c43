package dev.anvil.engine.cli;

import picocli.CommandLine;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * The code version: the project version and the git commit it was built from, which the build
 * writes into {@code version.txt} (run manifests record it; data-parallel ranks must agree on it).
 */
public final class Version implements CommandLine.IVersionProvider {

    private static final String CURRENT = read();

    /** Anvil's version string, e.g. {@code 0.1.0-SNAPSHOT (3c0c4fd1a2b3)}. */
    public static String current() {
        return CURRENT;
    }

    private static String read() {
        try (InputStream in = Version.class.getResourceAsStream("version.txt")) {
            if (in != null) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
            }
        } catch (IOException e) {
            // fall through: an unreadable resource is the same as none
        }
        String v = Version.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    @Override
    public String[] getVersion() {
        return new String[] {"anvil " + current(), "java " + Runtime.version()};
    }
}
