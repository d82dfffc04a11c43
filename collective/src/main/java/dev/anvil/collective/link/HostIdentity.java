package dev.anvil.collective.link;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Which processes can share memory: equal identities mean the same host name, the same boot (so the same kernel and
 * {@code /dev/shm}) and the same network namespace. The namespace keeps containers, and the emulated hosts of
 * {@code bench/}, apart: ranks that talk through different network stacks are treated as different hosts. Empty
 * when this is not Linux, so shared memory is never chosen there.
 */
public final class HostIdentity {
    private static final String LOCAL = compute();

    private HostIdentity() {
    }

    /** This process's identity, or "" when it cannot be known. */
    public static String local() {
        return LOCAL;
    }

    private static String compute() {
        try {
            String boot = Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).strip();
            String netns = Files.readSymbolicLink(Path.of("/proc/self/ns/net")).toString();
            return InetAddress.getLocalHost().getHostName() + "/" + boot + "/" + netns;
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return "";
        }
    }
}
