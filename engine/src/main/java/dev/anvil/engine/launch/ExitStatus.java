package dev.anvil.engine.launch;

import java.util.Map;

/** Says how a process ended from its exit value, where Java reports death by signal N as 128 + N. */
final class ExitStatus {

    private static final Map<Integer, String> SIGNALS = Map.ofEntries(Map.entry(1, "SIGHUP"), Map.entry(2, "SIGINT"),
            Map.entry(3, "SIGQUIT"), Map.entry(4, "SIGILL"), Map.entry(6, "SIGABRT"), Map.entry(7, "SIGBUS"),
            Map.entry(8, "SIGFPE"), Map.entry(9, "SIGKILL"), Map.entry(11, "SIGSEGV"), Map.entry(13, "SIGPIPE"),
            Map.entry(15, "SIGTERM"));

    private ExitStatus() {
    }

    /** E.g. "exited with code 1" or "was killed by SIGKILL (exit code 137)". */
    static String describe(int code) {
        String signal = code > 128 ? SIGNALS.get(code - 128) : null;
        return signal == null ? "exited with code " + code : "was killed by " + signal + " (exit code " + code + ")";
    }
}
