package dev.anvil.collective;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.tls.TlsConfig;
import dev.anvil.collective.transport.Transport;
import java.time.Duration;
import java.util.Objects;

/**
 * How a rank connects: secrets, timeouts and sockets. Start from {@link #defaults(JobToken)} and change fields with
 * the {@code with*} methods.
 *
 * @param token the job's shared secret, checked at rendezvous and on every ring connection
 * @param fingerprint what must be equal on every rank (the engine passes model config and code version)
 * @param tls mutual TLS on every connection, or null for plain TCP
 * @param peerTimeout a rank silent for this long, or a collective without progress for this long, fails the job
 * @param rendezvousTimeout how long all ranks may take to start and find each other
 * @param bindHost interface the coordinator and the ring listener bind ("0.0.0.0": all)
 * @param advertiseHost host other ranks use to reach this one; null: the local address of the route to the master
 * @param dataPort port of the ring listener; 0 picks a free one
 * @param sliceBytes largest payload of one data frame; must be equal on every rank
 * @param channels rings run side by side over disjoint parts of each buffer, each with its own connections and
 *     threads; 0 picks {@link #defaultChannels()}; must be equal on every rank
 * @param dataTransport how neighbours exchange data: shared memory on one host, TCP, or each where it applies
 * @param transport network threads for rendezvous and control, or null for the communicator's own
 */
public record CommunicatorOptions(JobToken token, String fingerprint, TlsConfig tls, Duration peerTimeout,
        Duration rendezvousTimeout, String bindHost, String advertiseHost, int dataPort, int sliceBytes, int channels,
        DataTransport dataTransport, Transport transport) {
    /** Default {@link #peerTimeout}. */
    public static final Duration DEFAULT_PEER_TIMEOUT = Duration.ofSeconds(60);
    /** Default {@link #rendezvousTimeout}. */
    public static final Duration DEFAULT_RENDEZVOUS_TIMEOUT = Duration.ofMinutes(5);
    /**
     * Default {@link #sliceBytes}: big enough to amortize the per-frame cost (a wake-up per slice matters when ranks
     * share cores: four shared-memory ranks on two cores reduce 64 MB 1.2x faster than with 512 KB), small enough
     * to pipeline (1 MB at 1 Gbit/s is 8 ms per hop; four ranks still reach 96% of the line rate).
     */
    public static final int DEFAULT_SLICE_BYTES = 1 << 20;
    /** Most channels {@link #defaultChannels()} picks. */
    public static final int MAX_DEFAULT_CHANNELS = 4;

    /** Validates, naming the field to fix. */
    public CommunicatorOptions {
        Objects.requireNonNull(token, "token: every rank needs the job token (JobToken.fromEnvironment)");
        Objects.requireNonNull(fingerprint, "fingerprint");
        Objects.requireNonNull(bindHost, "bindHost");
        Objects.requireNonNull(dataTransport, "dataTransport");
        if (peerTimeout.isNegative() || peerTimeout.isZero()) {
            throw new IllegalArgumentException("peerTimeout must be positive, got " + peerTimeout);
        }
        if (rendezvousTimeout.isNegative() || rendezvousTimeout.isZero()) {
            throw new IllegalArgumentException("rendezvousTimeout must be positive, got " + rendezvousTimeout);
        }
        if (sliceBytes < 64 || sliceBytes > (64 << 20)) {
            throw new IllegalArgumentException("sliceBytes must be in 64..64 MiB, got " + sliceBytes);
        }
        if (channels < 0 || channels > 64) {
            throw new IllegalArgumentException("channels must be in 0..64 (0: from the core count), got " + channels);
        }
        if (dataPort < 0 || dataPort > 65535) {
            throw new IllegalArgumentException("dataPort must be in 0..65535, got " + dataPort);
        }
    }

    /** Plain TCP between hosts, shared memory within one, on all interfaces, default timeouts, empty fingerprint. */
    public static CommunicatorOptions defaults(JobToken token) {
        return new CommunicatorOptions(token, "", null, DEFAULT_PEER_TIMEOUT, DEFAULT_RENDEZVOUS_TIMEOUT, "0.0.0.0",
                null, 0, DEFAULT_SLICE_BYTES, 0, DataTransport.AUTO, null);
    }

    /**
     * Channels when none are asked for: one per four cores, from 1 to {@value #MAX_DEFAULT_CHANNELS}. Each channel
     * keeps two threads busy (receiving and reducing; sending), and the other ranks on the node need cores too.
     */
    public static int defaultChannels() {
        return Math.clamp(Runtime.getRuntime().availableProcessors() / 4, 1, MAX_DEFAULT_CHANNELS);
    }

    /** {@link #channels}, with 0 resolved to {@link #defaultChannels()}. */
    public int resolvedChannels() {
        return channels == 0 ? defaultChannels() : channels;
    }

    /** With another fingerprint. */
    public CommunicatorOptions withFingerprint(String value) {
        return new CommunicatorOptions(token, value, tls, peerTimeout, rendezvousTimeout, bindHost, advertiseHost,
                dataPort, sliceBytes, channels, dataTransport, transport);
    }

    /** With another token. */
    public CommunicatorOptions withToken(JobToken value) {
        return new CommunicatorOptions(value, fingerprint, tls, peerTimeout, rendezvousTimeout, bindHost,
                advertiseHost, dataPort, sliceBytes, channels, dataTransport, transport);
    }

    /** With TLS (or null for none). */
    public CommunicatorOptions withTls(TlsConfig value) {
        return new CommunicatorOptions(token, fingerprint, value, peerTimeout, rendezvousTimeout, bindHost,
                advertiseHost, dataPort, sliceBytes, channels, dataTransport, transport);
    }

    /** With other timeouts. */
    public CommunicatorOptions withTimeouts(Duration peer, Duration rendezvous) {
        return new CommunicatorOptions(token, fingerprint, tls, peer, rendezvous, bindHost, advertiseHost, dataPort,
                sliceBytes, channels, dataTransport, transport);
    }

    /** Binding and advertising {@code host}, e.g. "127.0.0.1" for a single machine. */
    public CommunicatorOptions withHost(String host) {
        return new CommunicatorOptions(token, fingerprint, tls, peerTimeout, rendezvousTimeout, host, host, dataPort,
                sliceBytes, channels, dataTransport, transport);
    }

    /** Listening for ring connections on {@code value} (0: any free port). */
    public CommunicatorOptions withDataPort(int value) {
        return new CommunicatorOptions(token, fingerprint, tls, peerTimeout, rendezvousTimeout, bindHost,
                advertiseHost, value, sliceBytes, channels, dataTransport, transport);
    }

    /** With another slice size. */
    public CommunicatorOptions withSliceBytes(int value) {
        return new CommunicatorOptions(token, fingerprint, tls, peerTimeout, rendezvousTimeout, bindHost,
                advertiseHost, dataPort, value, channels, dataTransport, transport);
    }

    /** With another channel count (0: from the core count). */
    public CommunicatorOptions withChannels(int value) {
        return new CommunicatorOptions(token, fingerprint, tls, peerTimeout, rendezvousTimeout, bindHost,
                advertiseHost, dataPort, sliceBytes, value, dataTransport, transport);
    }

    /** With another data transport. */
    public CommunicatorOptions withDataTransport(DataTransport value) {
        return new CommunicatorOptions(token, fingerprint, tls, peerTimeout, rendezvousTimeout, bindHost,
                advertiseHost, dataPort, sliceBytes, channels, value, transport);
    }

    /** Sharing {@code value}'s network threads (the caller closes it after the communicators). */
    public CommunicatorOptions withTransport(Transport value) {
        return new CommunicatorOptions(token, fingerprint, tls, peerTimeout, rendezvousTimeout, bindHost,
                advertiseHost, dataPort, sliceBytes, channels, dataTransport, value);
    }
}
