package dev.anvil.engine.launch;

import sun.misc.Signal;

/**
 * SIGTERM and SIGINT to the launcher: the first asks it to stop the ranks cleanly (they get
 * SIGTERM, save a checkpoint and exit), a second one to kill them now.
 */
final class LaunchSignals {

    private volatile String first;
    private volatile boolean urgent;

    private LaunchSignals() {
    }

    /** Takes over SIGTERM and SIGINT for this process. */
    static LaunchSignals install() {
        LaunchSignals signals = new LaunchSignals();
        Signal.handle(new Signal("TERM"), s -> signals.received("SIGTERM"));
        Signal.handle(new Signal("INT"), s -> signals.received("SIGINT"));
        return signals;
    }

    void received(String name) {
        if (first == null) {
            first = name;
        } else {
            urgent = true;
        }
    }

    /** The first signal received, or {@code null}. */
    String stopRequested() {
        return first;
    }

    /** Whether a second signal asked not to wait for the ranks' checkpoints. */
    boolean urgent() {
        return urgent;
    }
}
