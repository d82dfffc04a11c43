package dev.anvil.collective.transport;

import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.util.concurrent.TimeUnit;

/**
 * Netty threads and socket flavour for the control plane (rendezvous, coordinator, aborts): native epoll when its
 * library loads (Linux x86_64), NIO otherwise. One transport may serve several communicators, e.g. all ranks of a
 * {@code LocalCluster}. The ring's data links have threads of their own.
 */
public final class Transport implements AutoCloseable {
    private final EventLoopGroup group;
    private final boolean epoll;

    private Transport(int threads, boolean epoll) {
        IoHandlerFactory factory = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
        this.group = new MultiThreadIoEventLoopGroup(threads, factory);
        this.epoll = epoll;
    }

    /**
     * @param threads event-loop threads; control traffic is light, so one is plenty
     */
    public static Transport create(int threads) {
        return new Transport(threads, Epoll.isAvailable());
    }

    /** Like {@link #create} but always NIO. */
    public static Transport nio(int threads) {
        return new Transport(threads, false);
    }

    /** The event loops. */
    public EventLoopGroup group() {
        return group;
    }

    /** Client socket class matching the event loops. */
    public Class<? extends Channel> socketChannel() {
        return epoll ? EpollSocketChannel.class : NioSocketChannel.class;
    }

    /** Server socket class matching the event loops. */
    public Class<? extends ServerChannel> serverChannel() {
        return epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
    }

    /** "epoll" or "nio". */
    public String kind() {
        return epoll ? "epoll" : "nio";
    }

    @Override
    public void close() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    }
}
