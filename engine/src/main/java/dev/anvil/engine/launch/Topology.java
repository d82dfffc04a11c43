package dev.anvil.engine.launch;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Which ranks this node runs and where they meet: {@code nprocPerNode} local ranks on node
 * {@code nodeRank} of {@code nnodes}, rendezvous at {@code masterHost:masterPort}.
 *
 * @param nprocPerNode ranks per node
 * @param nnodes       number of nodes
 * @param nodeRank     this node's index in {@code [0, nnodes)}
 * @param masterHost   host of global rank 0 (node 0's first rank)
 * @param masterPort   port of rank 0's rendezvous coordinator
 */
public record Topology(int nprocPerNode, int nnodes, int nodeRank, String masterHost, int masterPort) {

    /** Validates, naming the option to fix. */
    public Topology {
        if (nprocPerNode < 1) {
            throw new IllegalArgumentException("--nproc-per-node must be at least 1, got " + nprocPerNode);
        }
        if (nnodes < 1) {
            throw new IllegalArgumentException("--nnodes must be at least 1, got " + nnodes);
        }
        if (nodeRank < 0 || nodeRank >= nnodes) {
            throw new IllegalArgumentException("--node-rank must be in 0.." + (nnodes - 1) + " for --nnodes "
                    + nnodes + ", got " + nodeRank);
        }
        if (masterPort < 1 || masterPort > 65535) {
            throw new IllegalArgumentException("the master port must be in 1..65535, got " + masterPort);
        }
    }

    /** Ranks in the whole job. */
    public int worldSize() {
        return nnodes * nprocPerNode;
    }

    /** The global rank of local rank {@code localRank} on this node. */
    public int rank(int localRank) {
        return nodeRank * nprocPerNode + localRank;
    }

    /** The same ranks meeting on another port (a restart after the old coordinator's port). */
    public Topology withMasterPort(int port) {
        return new Topology(nprocPerNode, nnodes, nodeRank, masterHost, port);
    }

    /**
     * The variables torchrun sets for local rank {@code localRank}, which {@code anvil train}
     * reads to join the group.
     */
    public Map<String, String> environment(int localRank) {
        if (localRank < 0 || localRank >= nprocPerNode) {
            throw new IllegalArgumentException("local rank " + localRank + " is not in 0.." + (nprocPerNode - 1));
        }
        Map<String, String> env = new LinkedHashMap<>();
        env.put("MASTER_ADDR", masterHost);
        env.put("MASTER_PORT", Integer.toString(masterPort));
        env.put("RANK", Integer.toString(rank(localRank)));
        env.put("WORLD_SIZE", Integer.toString(worldSize()));
        env.put("LOCAL_RANK", Integer.toString(localRank));
        env.put("LOCAL_WORLD_SIZE", Integer.toString(nprocPerNode));
        return env;
    }
}
