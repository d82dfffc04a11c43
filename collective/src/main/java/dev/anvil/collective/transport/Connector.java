package dev.anvil.collective.transport;

import dev.anvil.collective.CollectiveException;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.time.Instant;

/**
 * Connects with retries: the peer may not listen yet (the coordinator and the ring servers start in parallel), so
 * refused or timed-out connects are retried with exponential backoff until the deadline.
 */
public final class Connector {
    private static final long FIRST_BACKOFF_MILLIS = 50;
    private static final long MAX_BACKOFF_MILLIS = 2_000;
    private static final long MAX_ATTEMPT_MILLIS = 5_000;

    private Connector() {
    }

    /** One connection attempt that may take up to {@code millis}. */
    private interface Attempt<T> {
        T run(long millis) throws Exception;
    }

    /**
     * A Netty channel.
     *
     * @param what who is being reached, for the error message ("the coordinator", "rank 3")
     * @return the connected channel, with {@code initializer}'s handlers installed
     * @throws CollectiveException when the deadline passes first
     */
    public static Channel connect(Transport transport, String host, int port, ChannelInitializer<Channel> initializer,
            Instant deadline, String what) {
        return retry(host, port, deadline, what, attempt -> {
            ChannelFuture f = new Bootstrap()
                    .group(transport.group())
                    .channel(transport.socketChannel())
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) attempt)
                    .option(ChannelOption.TCP_NODELAY, true)
                    .handler(initializer)
                    .connect(host, port);
            if (!f.awaitUninterruptibly(attempt + 1_000)) {
                f.cancel(false);
                f.channel().close();
                throw new CollectiveException("connect attempt timed out");
            }
            if (!f.isSuccess()) {
                throw f.cause() instanceof Exception e ? e : new CollectiveException(f.cause().toString(), f.cause());
            }
            return f.channel();
        });
    }

    /**
     * A blocking JDK socket, for the ring's data links.
     *
     * @param what who is being reached, for the error message ("rank 3")
     * @throws CollectiveException when the deadline passes first
     */
    public static SocketChannel connect(String host, int port, Instant deadline, String what) {
        return retry(host, port, deadline, what, attempt -> {
            SocketChannel socket = SocketChannel.open();
            try {
                socket.socket().connect(new InetSocketAddress(host, port), (int) attempt);
                return socket;
            } catch (IOException e) {
                socket.close();
                throw e;
            }
        });
    }

    private static <T> T retry(String host, int port, Instant deadline, String what, Attempt<T> attempt) {
        long backoff = FIRST_BACKOFF_MILLIS;
        Throwable last = null;
        while (true) {
            long remaining = Duration.between(Instant.now(), deadline).toMillis();
            if (remaining <= 0) {
                throw new CollectiveException("could not connect to " + what + " at " + host + ":" + port
                        + " before the deadline: " + (last == null ? "no attempt finished" : last.toString())
                        + "; check that the process is running and the address is reachable", last);
            }
            try {
                return attempt.run(Math.min(remaining, MAX_ATTEMPT_MILLIS));
            } catch (Exception e) {
                last = e;
            }
            sleep(Math.min(backoff, Math.max(0, Duration.between(Instant.now(), deadline).toMillis())));
            backoff = Math.min(MAX_BACKOFF_MILLIS, backoff * 2);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException("interrupted while connecting", e);
        }
    }
}
