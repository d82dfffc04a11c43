package dev.anvil.collective.rendezvous;

import dev.anvil.collective.CollectiveException;
import java.util.Map;

/**
 * Where the coordinator runs and who this process is. Rank 0 runs the coordinator on {@code masterHost:masterPort};
 * every rank connects to it.
 *
 * @param masterHost host of rank 0
 * @param masterPort coordinator port on that host
 * @param rank this process's rank
 * @param worldSize number of ranks
 * @param localRank rank among the processes on this node (for the engine to pick a device)
 */
public record RendezvousConfig(String masterHost, int masterPort, int rank, int worldSize, int localRank) {
    /** Port used when the environment names none (the same default as torchrun). */
    public static final int DEFAULT_PORT = 29500;

    /** Validates the fields, saying which one to fix. */
    public RendezvousConfig {
        if (masterHost == null || masterHost.isBlank()) {
            throw new CollectiveException("master host is empty; set MASTER_ADDR to rank 0's host");
        }
        if (masterPort < 1 || masterPort > 65535) {
            throw new CollectiveException("master port " + masterPort + " is not in 1..65535; fix MASTER_PORT");
        }
        if (worldSize < 1) {
            throw new CollectiveException("world size " + worldSize + " must be at least 1");
        }
        if (rank < 0 || rank >= worldSize) {
            throw new CollectiveException("rank " + rank + " is not in 0.." + (worldSize - 1)
                    + " for world size " + worldSize);
        }
        if (localRank < 0) {
            throw new CollectiveException("local rank " + localRank + " must not be negative");
        }
    }

    /** Explicit master address, rank and world size; the local rank is taken to be the rank. */
    public static RendezvousConfig of(String masterHost, int masterPort, int rank, int worldSize) {
        return new RendezvousConfig(masterHost, masterPort, rank, worldSize, rank);
    }

    /** From torchrun's variables: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK (default: RANK). */
    public static RendezvousConfig fromTorchrun(Map<String, String> env) {
        int rank = intVar(env, "RANK");
        return new RendezvousConfig(
                required(env, "MASTER_ADDR"),
                intVar(env, "MASTER_PORT"),
                rank,
                intVar(env, "WORLD_SIZE"),
                env.containsKey("LOCAL_RANK") ? intVar(env, "LOCAL_RANK") : rank);
    }

    /**
     * From Slurm's variables: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, and the first host of SLURM_JOB_NODELIST
     * (or MASTER_ADDR when set); the port is MASTER_PORT or {@value #DEFAULT_PORT}.
     */
    public static RendezvousConfig fromSlurm(Map<String, String> env) {
        String master = env.get("MASTER_ADDR");
        if (master == null || master.isBlank()) {
            master = SlurmNodeList.first(required(env, "SLURM_JOB_NODELIST"));
        }
        int port = env.containsKey("MASTER_PORT") ? intVar(env, "MASTER_PORT") : DEFAULT_PORT;
        return new RendezvousConfig(master, port, intVar(env, "SLURM_PROCID"), intVar(env, "SLURM_NTASKS"),
                intVar(env, "SLURM_LOCALID"));
    }

    /** torchrun's variables when RANK is set, else Slurm's when SLURM_PROCID is set. */
    public static RendezvousConfig fromEnvironment(Map<String, String> env) {
        if (env.containsKey("RANK")) {
            return fromTorchrun(env);
        }
        if (env.containsKey("SLURM_PROCID")) {
            return fromSlurm(env);
        }
        throw new CollectiveException("no rendezvous variables: launch with torchrun (MASTER_ADDR, MASTER_PORT,"
                + " RANK, WORLD_SIZE, LOCAL_RANK) or srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,"
                + " SLURM_JOB_NODELIST), or build a RendezvousConfig explicitly");
    }

    private static String required(Map<String, String> env, String name) {
        String value = env.get(name);
        if (value == null || value.isBlank()) {
            throw new CollectiveException("environment variable " + name + " is not set");
        }
        return value.strip();
    }

    private static int intVar(Map<String, String> env, String name) {
        String value = required(env, name);
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            throw new CollectiveException("environment variable " + name + "='" + value + "' is not an integer");
        }
    }
}
