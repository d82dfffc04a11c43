package dev.anvil.engine.launch;

import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * This node's ranks as child processes, watched until all have exited: when one fails the others
 * get SIGTERM, then SIGKILL after a grace period; a signal to the launcher is passed on as SIGTERM.
 */
final class WorkerGroup {

    /**
     * How one rank ended.
     *
     * @param rank    global rank
     * @param pid     process id
     * @param code    exit value (128 + N after signal N)
     * @param stopped whether the launcher had already asked it to stop
     */
    record Exit(int rank, long pid, int code, boolean stopped) {

        boolean failed() {
            return code != 0;
        }

        /** E.g. "rank 1 (pid 4242) was killed by SIGKILL (exit code 137)". */
        String describe() {
            return "rank " + rank + " (pid " + pid + ") " + ExitStatus.describe(code)
                    + (stopped && failed() ? " after the launcher stopped it" : "");
        }
    }

    /**
     * How the group ended.
     *
     * @param exits  every rank's exit, in the order they happened
     * @param signal the signal that stopped the launcher, or {@code null}
     */
    record Outcome(List<Exit> exits, String signal) {

        boolean succeeded() {
            return exits.stream().noneMatch(Exit::failed);
        }

        /** The first rank that failed on its own (the cause; later failures are usually its echo). */
        Exit firstFailure() {
            return exits.stream().filter(e -> e.failed() && !e.stopped()).findFirst()
                    .orElseGet(() -> exits.stream().filter(Exit::failed).findFirst().orElse(null));
        }
    }

    private record Rank(int rank, Process process, List<Thread> output) {
    }

    private final Topology topology;
    private final List<String> command;
    private final Map<String, String> extraEnv;
    private final PrintStream out;
    private final PrintStream err;
    private final Duration monitorInterval;
    private final Duration gracePeriod;
    private final LaunchSignals signals;

    /**
     * @param command         the command every rank runs
     * @param extraEnv        variables for every rank besides {@link Topology#environment}
     * @param monitorInterval how often to look at signals and deadlines (exits are seen at once)
     * @param gracePeriod     how long ranks told to stop after a failure may take before SIGKILL
     */
    WorkerGroup(Topology topology, List<String> command, Map<String, String> extraEnv, PrintStream out,
                PrintStream err, Duration monitorInterval, Duration gracePeriod, LaunchSignals signals) {
        this.topology = topology;
        this.command = List.copyOf(command);
        this.extraEnv = Map.copyOf(extraEnv);
        this.out = out;
        this.err = err;
        this.monitorInterval = monitorInterval;
        this.gracePeriod = gracePeriod;
        this.signals = signals;
    }

    /** Starts every local rank and returns once all have exited. */
    Outcome run() throws IOException, InterruptedException {
        BlockingQueue<Exit> exits = new LinkedBlockingQueue<>();
        List<Rank> ranks = new ArrayList<>();
        Set<Integer> stopped = ConcurrentHashMap.newKeySet(); // ranks told to stop, read as they exit
        try {
            for (int local = 0; local < topology.nprocPerNode(); local++) {
                ranks.add(start(local, exits, stopped));
            }
        } catch (IOException e) {
            ranks.forEach(r -> r.process().destroyForcibly());
            throw new IOException("cannot start rank " + topology.rank(ranks.size()) + " (" + command.getFirst()
                    + "): " + e.getMessage(), e);
        }
        StringBuilder started = new StringBuilder("anvil launch: started");
        for (Rank r : ranks) {
            started.append(r.rank() == topology.rank(0) ? " " : ", ").append("rank ").append(r.rank())
                    .append(" pid ").append(r.process().pid());
        }
        out.println(started);

        List<Exit> order = new ArrayList<>();
        long killAt = Long.MAX_VALUE;
        boolean forwarded = false;
        while (order.size() < ranks.size()) {
            Exit exit = exits.poll(monitorInterval.toNanos(), TimeUnit.NANOSECONDS);
            if (exit != null) {
                order.add(exit);
                if (exit.failed() && killAt == Long.MAX_VALUE && !forwarded) {
                    err.println("anvil launch: " + exit.describe() + "; stopping the other ranks");
                    terminate(ranks, stopped);
                    killAt = System.nanoTime() + gracePeriod.toNanos();
                }
            }
            if (signals.stopRequested() != null && !forwarded) {
                forwarded = true;
                err.println("anvil launch: " + signals.stopRequested() + ": asking the ranks to save a checkpoint"
                        + " and stop (send it again to kill them now)");
                terminate(ranks, stopped);
            }
            if (signals.urgent() || System.nanoTime() > killAt) {
                ranks.forEach(r -> r.process().toHandle().destroyForcibly());
            }
        }
        for (Rank r : ranks) {
            for (Thread t : r.output()) {
                t.join(TimeUnit.SECONDS.toMillis(5)); // let the last lines out before the launcher's verdict
            }
        }
        return new Outcome(List.copyOf(order), forwarded ? signals.stopRequested() : null);
    }

    private Rank start(int local, BlockingQueue<Exit> exits, Set<Integer> stopped) throws IOException {
        int rank = topology.rank(local);
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().putAll(extraEnv);
        builder.environment().putAll(topology.environment(local));
        Process process = builder.start();
        String prefix = "[rank " + rank + "] ";
        List<Thread> output = List.of(PrefixedOutput.start(process.getInputStream(), out, prefix),
                PrefixedOutput.start(process.getErrorStream(), err, prefix));
        process.getOutputStream().close(); // ranks read no input
        // onExit runs as the process is reaped, so the queue holds the exits in the order they happened.
        process.onExit().thenAccept(p -> exits.add(new Exit(rank, p.pid(), p.exitValue(), stopped.contains(rank))));
        return new Rank(rank, process, output);
    }

    /**
     * SIGTERM to every rank still running: trainers save a checkpoint if they can and exit. Sent
     * through the {@link ProcessHandle}: {@link Process#destroy()} would also close our ends of the
     * rank's pipes, losing what it says on the way out.
     */
    private static void terminate(List<Rank> ranks, Set<Integer> stopped) {
        for (Rank r : ranks) {
            if (r.process().isAlive()) {
                stopped.add(r.rank());
                r.process().toHandle().destroy();
            }
        }
    }
}
