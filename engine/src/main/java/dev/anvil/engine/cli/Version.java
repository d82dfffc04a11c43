package dev.anvil.engine.cli;

import picocli.CommandLine;

/** The code version, from the jar manifest (or "dev" when running from classes). */
public final class Version implements CommandLine.IVersionProvider {

    /** Anvil's version string. */
    public static String current() {
        String v = Version.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    @Override
    public String[] getVersion() {
        return new String[] {"anvil " + current(), "java " + Runtime.version()};
    }
}
