package dev.anvil.engine.train;

import sun.misc.Signal;

/**
 * Turns SIGTERM and SIGINT into a request to stop after the current step, so a preempted run
 * saves a checkpoint and exits cleanly. A second SIGINT (an impatient Ctrl-C) exits at once.
 */
public final class StopSignal {

    private volatile String received;

    /** Installs the handlers for this process. */
    public static StopSignal install() {
        StopSignal stop = new StopSignal();
        Signal.handle(new Signal("TERM"), s -> stop.request("SIGTERM"));
        Signal.handle(new Signal("INT"), s -> {
            if (stop.received != null) {
                Runtime.getRuntime().halt(130);
            }
            stop.request("SIGINT");
        });
        return stop;
    }

    /** A stop flag no signal sets (tests and embedded use). */
    public static StopSignal none() {
        return new StopSignal();
    }

    /** Asks the trainer to stop after the current step. */
    public void request(String reason) {
        received = reason;
    }

    /** Whether a stop was requested. */
    public boolean requested() {
        return received != null;
    }

    /** What asked for the stop, e.g. {@code SIGTERM}, or {@code null}. */
    public String reason() {
        return received;
    }
}
