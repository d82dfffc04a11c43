package dev.anvil.collective.transport;

import dev.anvil.collective.CollectiveException;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
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

    /**
     * @param what who is being reached, for the error message ("the coordinator", "rank 3")
     * @return the connected channel, with {@code initializer}'s handlers installed
     * @throws CollectiveException when the deadline passes first
     */
    public static Channel connect(Transport transport, String host, int port, ChannelInitializer<Channel> initializer,
            Instant deadline, String what) {
        long backoff = FIRST_BACKOFF_MILLIS;
        Throwable last = null;
        while (true) {
            long remaining = Duration.between(Instant.now(), deadline).toMillis();
            if (remaining <= 0) {
                throw new CollectiveException("could not connect to " + what + " at " + host + ":" + port
                        + " before the deadline: " + (last == null ? "no attempt finished" : last.toString())
                        + "; check that the process is running and the address is reachable", last);
            }
            long attempt = Math.min(remaining, MAX_ATTEMPT_MILLIS);
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
                last = new CollectiveException("connect attempt timed out");
            } else if (f.isSuccess()) {
                return f.channel();
            } else {
                last = f.cause();
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
