package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.link.Connection;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A rank's ring port: accepts one connection per channel from the left neighbour, each after its {@link RingHandshake},
 * and refuses everything else. Each connection's handshake runs on a virtual thread of its own, so a slow or hostile
 * client cannot hold up the real neighbour.
 */
public final class RingListener implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(RingListener.class.getName());

    private final ServerSocketChannel server;
    private final RingHandshake.Terms terms;
    private final Duration handshakeTimeout;
    private final AtomicBoolean[] claimed;
    private final boolean[] taken;
    private final AtomicReferenceArray<CompletableFuture<Connection>> channels;
    private final Thread acceptor;
    private volatile boolean closed;

    private RingListener(ServerSocketChannel server, RingHandshake.Terms terms, Duration handshakeTimeout) {
        this.server = server;
        this.terms = terms;
        this.handshakeTimeout = handshakeTimeout;
        this.claimed = new AtomicBoolean[terms.channels()];
        this.taken = new boolean[terms.channels()];
        this.channels = new AtomicReferenceArray<>(terms.channels());
        for (int c = 0; c < terms.channels(); c++) {
            claimed[c] = new AtomicBoolean();
            channels.set(c, new CompletableFuture<>());
        }
        this.acceptor = Thread.ofPlatform().daemon().name("anvil-rank" + terms.rank() + "-ring-accept")
                .start(this::acceptLoop);
    }

    /**
     * Listens on {@code host:port} (0: any free port).
     *
     * @throws CollectiveException naming the address when it cannot be bound
     */
    public static RingListener open(String host, int port, RingHandshake.Terms terms, Duration handshakeTimeout) {
        try {
            ServerSocketChannel server = ServerSocketChannel.open();
            try {
                server.bind(new InetSocketAddress(host, port), 64);
            } catch (IOException e) {
                server.close();
                throw e;
            }
            return new RingListener(server, terms, handshakeTimeout);
        } catch (IOException e) {
            throw new CollectiveException("rank " + terms.rank() + " cannot listen on " + host + ":" + port + ": "
                    + e.getMessage(), e);
        }
    }

    /** The port bound. */
    public int port() {
        try {
            return ((InetSocketAddress) server.getLocalAddress()).getPort();
        } catch (IOException e) {
            return -1;
        }
    }

    /** Completes with the left neighbour's connection for {@code channel}, its handshake done. */
    public CompletableFuture<Connection> channel(int channel) {
        return channels.get(channel);
    }

    /** Takes over the connection of {@code channel} (completed): from now on the caller closes it. */
    public Connection take(int channel) {
        taken[channel] = true;
        return channels.get(channel).join();
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel socket;
            try {
                socket = server.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!closed) {
                    LOG.log(System.Logger.Level.WARNING, "rank {0}: accepting on the ring port failed: {1}",
                            terms.rank(), e.toString());
                }
                continue;
            }
            Thread.ofVirtual().name("anvil-rank" + terms.rank() + "-ring-handshake").start(() -> handshake(socket));
        }
    }

    private void handshake(SocketChannel socket) {
        String from = remote(socket);
        long deadline = System.nanoTime() + handshakeTimeout.toNanos();
        try {
            RingHandshake.Accepted accepted = RingHandshake.accept(socket, terms,
                    channel -> !closed && claimed[channel].compareAndSet(false, true), deadline);
            if (!channels.get(accepted.channel()).complete(accepted.connection())) {
                accepted.connection().close();
            }
        } catch (RingHandshake.Refusal e) {
            LOG.log(System.Logger.Level.WARNING, "rank {0}: refusing ring connection from {1}: {2}", terms.rank(),
                    from, e.getMessage());
        } catch (IOException | RuntimeException e) {
            if (!closed) {
                LOG.log(System.Logger.Level.WARNING, "rank {0}: closing ring connection from {1}: {2}", terms.rank(),
                        from, e.getMessage() != null ? e.getMessage() : e.toString());
            }
        }
    }

    private static String remote(SocketChannel socket) {
        try {
            return String.valueOf(socket.getRemoteAddress());
        } catch (IOException e) {
            return "a closed connection";
        }
    }

    /** Stops listening; connections not yet taken over are closed. */
    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // nothing more to do
        }
        try {
            acceptor.join(TimeUnit.SECONDS.toMillis(2));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (int c = 0; c < channels.length(); c++) {
            // A connection accepted but never taken over is closed here; one taken over belongs to its link.
            if (!channels.get(c).completeExceptionally(new CollectiveException("the ring port was closed"))
                    && !taken[c]) {
                channels.get(c).join().close();
            }
        }
    }
}
