package dev.anvil.engine.launch;

import dev.anvil.collective.LocalCluster;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.engine.cli.AnvilMain;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/**
 * {@code anvil launch}: runs this node's ranks of a data-parallel job as child processes, as
 * torchrun does: sets their rendezvous variables, prefixes their output with {@code [rank R]},
 * stops them all when one fails, passes SIGTERM/SIGINT on so they checkpoint and exit, and can
 * restart the local group from the last checkpoint.
 */
@Command(name = "launch", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Run a data-parallel job's local ranks as child processes.",
                "Example: anvil launch --nproc-per-node 2 -- train --steps 1000 --save-dir runs/dp",
                "Each rank runs `anvil <command>` with MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK and"
                        + " LOCAL_WORLD_SIZE set, and ANVIL_JOB_TOKEN (a fresh random one on a single node when unset)."})
public final class LaunchCommand implements Callable<Integer> {

    @Option(names = "--nproc-per-node", required = true, paramLabel = "N", description = "Ranks on this node")
    int nprocPerNode;

    @Option(names = "--nnodes", defaultValue = "1", paramLabel = "M", description = "Nodes in the job (default: ${DEFAULT-VALUE})")
    int nnodes;

    @Option(names = "--node-rank", defaultValue = "0", paramLabel = "I",
            description = "This node's index; its ranks are I·N .. I·N+N-1 (default: ${DEFAULT-VALUE})")
    int nodeRank;

    @Option(names = "--master", paramLabel = "HOST:PORT",
            description = "Where rank 0 (on node 0) runs the rendezvous; required with --nnodes > 1"
                    + " (default: 127.0.0.1 and a free port, a fresh one on each restart)")
    String master;

    @Option(names = "--max-restarts", defaultValue = "0", paramLabel = "K",
            description = "After a failure, restart the local ranks up to K times, adding --resume to train (default: ${DEFAULT-VALUE})")
    int maxRestarts;

    @Option(names = "--monitor-interval", defaultValue = "0.1", paramLabel = "SECONDS",
            description = "How often to check on the ranks, signals and deadlines (default: ${DEFAULT-VALUE})")
    double monitorInterval;

    @Option(names = "--grace-period", defaultValue = "30", paramLabel = "SECONDS",
            description = "After a failure, how long the other ranks get between SIGTERM and SIGKILL; longer than"
                    + " their --comm-timeout lets them report the lost rank (default: ${DEFAULT-VALUE})")
    double gracePeriod;

    @Parameters(arity = "1..*", paramLabel = "-- COMMAND", description = "The anvil command each rank runs, after --, e.g. -- train --steps 100")
    List<String> command;

    /** Rendezvous settings the launcher owns: a rank given its own would leave the group. */
    private static final List<String> OWNED_OPTIONS = List.of("--master", "--rank", "--world-size");

    @Override
    public Integer call() throws IOException, InterruptedException {
        PrintStream out = System.out;
        PrintStream err = System.err;
        for (String arg : command) {
            for (String owned : OWNED_OPTIONS) {
                if (arg.equals(owned) || arg.startsWith(owned + "=")) {
                    throw new IllegalArgumentException(owned + " is set by the launcher for every rank (as RANK,"
                            + " WORLD_SIZE, MASTER_ADDR, MASTER_PORT); drop it from the command after --");
                }
            }
        }
        if (monitorInterval <= 0 || gracePeriod < 0 || maxRestarts < 0) {
            throw new IllegalArgumentException("--monitor-interval must be positive, --grace-period and --max-restarts"
                    + " at least 0");
        }
        boolean freshPorts = master == null;
        if (freshPorts && nnodes > 1) {
            throw new IllegalArgumentException("--nnodes " + nnodes + " needs --master HOST:PORT: the address of node 0,"
                    + " reachable from every node, and the same on all of them");
        }
        Topology topology = freshPorts
                ? new Topology(nprocPerNode, nnodes, nodeRank, "127.0.0.1", LocalCluster.freePort())
                : new Topology(nprocPerNode, nnodes, nodeRank, host(master), port(master));
        Map<String, String> extraEnv = tokenEnvironment(System.getenv(), nnodes);
        List<String> args = new ArrayList<>(command);

        out.printf("anvil launch: world size %d (%d node%s x %d), node %d runs ranks %d-%d, master %s:%d%s,"
                        + " restarts allowed: %d%n", topology.worldSize(), nnodes, nnodes == 1 ? "" : "s", nprocPerNode,
                nodeRank, topology.rank(0), topology.rank(nprocPerNode - 1), topology.masterHost(),
                topology.masterPort(), freshPorts ? " (a new port on each restart)" : "", maxRestarts);
        LaunchSignals signals = LaunchSignals.install();
        for (int restart = 0; ; restart++) {
            WorkerGroup group = new WorkerGroup(topology, JvmCommand.current(AnvilMain.class.getName(), args), extraEnv,
                    out, err, seconds(monitorInterval), seconds(gracePeriod), signals);
            WorkerGroup.Outcome outcome = group.run();
            String exits = outcome.exits().stream().map(WorkerGroup.Exit::describe).collect(Collectors.joining("; "));
            if (outcome.succeeded()) {
                out.println("anvil launch: " + (outcome.signal() == null ? "done" : "stopped by " + outcome.signal())
                        + ": every rank exited 0");
                return 0;
            }
            WorkerGroup.Exit cause = outcome.firstFailure();
            if (outcome.signal() != null || restart == maxRestarts) {
                err.println("anvil launch: failed: " + cause.describe()
                        + (outcome.signal() != null ? " (while stopping on " + outcome.signal() + ")" : "")
                        + (maxRestarts > 0 && outcome.signal() == null ? " after " + restart + " restart(s)" : "")
                        + "; all exits: " + exits);
                return 1;
            }
            if (args.getFirst().equals("train") && args.stream().noneMatch(a -> a.startsWith("--resume"))) {
                args.add("--resume");
            }
            if (freshPorts) {
                topology = topology.withMasterPort(LocalCluster.freePort());
            }
            err.printf("anvil launch: %s; restart %d of %d from the last checkpoint, master %s:%d (exits: %s)%n",
                    cause.describe(), restart + 1, maxRestarts, topology.masterHost(), topology.masterPort(), exits);
        }
    }

    /**
     * The job token for the ranks: theirs from the environment if set; else, on one node, a fresh
     * random one (all ranks are this launcher's children). Nodes cannot agree on a random token.
     */
    static Map<String, String> tokenEnvironment(Map<String, String> env, int nnodes) {
        if (isSet(env, JobToken.ENV_TOKEN) || isSet(env, JobToken.ENV_TOKEN_FILE)) {
            return Map.of();
        }
        if (nnodes > 1) {
            throw new IllegalArgumentException("a job on " + nnodes + " nodes needs the same job token on every node:"
                    + " set " + JobToken.ENV_TOKEN + " (e.g. export " + JobToken.ENV_TOKEN + "=$(openssl rand -hex 32),"
                    + " then the same value on the other nodes) or " + JobToken.ENV_TOKEN_FILE
                    + " to a file holding it, before launching");
        }
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        return Map.of(JobToken.ENV_TOKEN, HexFormat.of().formatHex(secret));
    }

    private static boolean isSet(Map<String, String> env, String name) {
        String value = env.get(name);
        return value != null && !value.isBlank();
    }

    private static String host(String master) {
        int colon = master.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("--master must be HOST:PORT, got '" + master + "'");
        }
        return master.substring(0, colon);
    }

    private static int port(String master) {
        try {
            return Integer.parseInt(master.substring(master.lastIndexOf(':') + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--master must be HOST:PORT, got '" + master + "'");
        }
    }

    private static Duration seconds(double value) {
        return Duration.ofNanos((long) (value * 1e9));
    }
}
