package dev.anvil.collective;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.collective.transport.Transport;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;

/**
 * R communicators in this process, over real loopback sockets and sharing one control-plane thread: for tests and
 * benchmarks of the real protocol without launching processes.
 */
public final class LocalCluster implements AutoCloseable {
    private final List<Communicator> ranks;
    private final Transport transport;

    private LocalCluster(List<Communicator> ranks, Transport transport) {
        this.ranks = List.copyOf(ranks);
        this.transport = transport;
    }

    /** {@code worldSize} ranks with a random job token and default options, on 127.0.0.1. */
    public static LocalCluster start(int worldSize) {
        return start(worldSize, CommunicatorOptions.defaults(JobToken.random()));
    }

    /**
     * {@code worldSize} ranks on 127.0.0.1 with {@code options} (whose host and transport are replaced).
     *
     * @throws CollectiveException when any rank fails to connect
     */
    public static LocalCluster start(int worldSize, CommunicatorOptions options) {
        Transport transport = Transport.create(1);
        CommunicatorOptions local = options.withHost("127.0.0.1").withTransport(transport);
        int port = freePort();
        List<Communicator> started = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Communicator>> pending = new ArrayList<>();
            for (int r = 0; r < worldSize; r++) {
                RendezvousConfig config = RendezvousConfig.of("127.0.0.1", port, r, worldSize);
                pending.add(pool.submit(() -> NettyCommunicator.connect(config, local)));
            }
            CollectiveException failure = null;
            for (Future<Communicator> f : pending) {
                try {
                    started.add(f.get());
                } catch (ExecutionException e) {
                    if (failure == null) {
                        failure = e.getCause() instanceof CollectiveException c ? c
                                : new CollectiveException("rank failed to start: " + e.getCause(), e.getCause());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    failure = new CollectiveException("interrupted while starting the cluster", e);
                }
            }
            if (failure != null) {
                started.forEach(Communicator::close);
                transport.close();
                throw failure;
            }
        }
        return new LocalCluster(started, transport);
    }

    /**
     * A free TCP port on loopback, chosen below the kernel's ephemeral range where it can: every port bound to 0 (the
     * ranks' own ring listeners, outgoing connections) comes from that range, so it cannot take the coordinator's port
     * between this choice and the coordinator's bind, as it sometimes did when the port came from the range itself.
     */
    public static int freePort() {
        int ephemeralLow = ephemeralLow();
        var random = ThreadLocalRandom.current();
        for (int attempt = 0; attempt < 64 && ephemeralLow > 2048; attempt++) {
            int port = random.nextInt(Math.max(1024, ephemeralLow - 16384), ephemeralLow);
            try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
                return s.getLocalPort();
            } catch (IOException taken) {
                // try another
            }
        }
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free loopback port", e);
        }
    }

    /** The first port of Linux's ephemeral range (32768 by default, and where it cannot be read). */
    private static int ephemeralLow() {
        try {
            String range = Files.readString(Path.of("/proc/sys/net/ipv4/ip_local_port_range"));
            return Integer.parseInt(range.trim().split("\\s+")[0]);
        } catch (IOException | RuntimeException e) {
            return 32768;
        }
    }

    /** Number of ranks. */
    public int worldSize() {
        return ranks.size();
    }

    /** The communicator of {@code rank}. */
    public Communicator rank(int rank) {
        return ranks.get(rank);
    }

    /** All communicators, by rank. */
    public List<Communicator> ranks() {
        return ranks;
    }

    /** Closes every rank, then the shared network threads. */
    @Override
    public void close() {
        for (Communicator c : ranks) {
            if (c instanceof NettyCommunicator n) {
                n.quiesce();
            }
        }
        ranks.forEach(Communicator::close);
        transport.close();
    }
}
