package dev.anvil.engine.cli;

import dev.anvil.collective.Communicator;
import dev.anvil.collective.CommunicatorOptions;
import dev.anvil.collective.NettyCommunicator;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.collective.tls.TlsConfig;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * Where a data-parallel rank finds its group: {@code --master host:port} with {@code --rank} and
 * {@code --world-size}, or torchrun's ({@code MASTER_ADDR}, {@code RANK}, ...) or Slurm's
 * ({@code SLURM_PROCID}, ...) environment. Every rank needs the job token in
 * {@code ANVIL_JOB_TOKEN} (or a file named by {@code ANVIL_JOB_TOKEN_FILE}).
 */
public final class DistributedOptions {

    @Option(names = "--master", paramLabel = "HOST:PORT", description = "Rank 0's rendezvous address (or MASTER_ADDR/MASTER_PORT)")
    String master;

    @Option(names = "--rank", description = "This process's rank (or RANK / SLURM_PROCID)")
    Integer rank;

    @Option(names = "--world-size", description = "Number of data-parallel ranks (or WORLD_SIZE / SLURM_NTASKS)")
    Integer worldSize;

    @Option(names = "--comm-timeout", defaultValue = "60", paramLabel = "SECONDS",
            description = "Stop with an error naming the lost rank when a peer is silent this long (default: ${DEFAULT-VALUE})")
    int commTimeout;

    @Mixin
    CommOptions comm;

    @Option(names = "--tls-ca", paramLabel = "PEM", description = "CA certificate: turns on mutual TLS between ranks")
    Path tlsCa;

    @Option(names = "--tls-cert", paramLabel = "PEM", description = "This node's certificate (with --tls-ca)")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "PEM", description = "This node's private key, PKCS#8 (with --tls-ca)")
    Path tlsKey;

    /** The rendezvous settings, or empty for a single process. */
    public Optional<RendezvousConfig> rendezvous(Map<String, String> env) {
        if (master != null || rank != null || worldSize != null) {
            if (master == null || rank == null || worldSize == null) {
                throw new IllegalArgumentException("--master, --rank and --world-size go together; give all three");
            }
            int colon = master.lastIndexOf(':');
            if (colon <= 0) {
                throw new IllegalArgumentException("--master must be HOST:PORT, got '" + master + "'");
            }
            int port;
            try {
                port = Integer.parseInt(master.substring(colon + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--master must be HOST:PORT, got '" + master + "'");
            }
            return Optional.of(RendezvousConfig.of(master.substring(0, colon), port, rank, worldSize));
        }
        if (env.containsKey("RANK") || env.containsKey("SLURM_PROCID")) {
            RendezvousConfig config = RendezvousConfig.fromEnvironment(env);
            return config.worldSize() == 1 ? Optional.empty() : Optional.of(config);
        }
        return Optional.empty();
    }

    /** Joins the group; blocks until every rank has arrived (or the rendezvous times out). */
    public Communicator connect(RendezvousConfig config, String fingerprint, Map<String, String> env) {
        if (commTimeout <= 0) {
            throw new IllegalArgumentException("--comm-timeout must be positive, got " + commTimeout);
        }
        CommunicatorOptions options = comm.apply(CommunicatorOptions.defaults(JobToken.fromEnvironment(env)))
                .withFingerprint(fingerprint)
                .withTimeouts(Duration.ofSeconds(commTimeout), CommunicatorOptions.DEFAULT_RENDEZVOUS_TIMEOUT);
        if (tlsCa != null || tlsCert != null || tlsKey != null) {
            if (tlsCa == null || tlsCert == null || tlsKey == null) {
                throw new IllegalArgumentException("--tls-ca, --tls-cert and --tls-key go together; give all three");
            }
            options = options.withTls(new TlsConfig(tlsCa, tlsCert, tlsKey));
        }
        return NettyCommunicator.connect(config, options);
    }
}
