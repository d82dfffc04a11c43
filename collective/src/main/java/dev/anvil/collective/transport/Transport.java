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
 * Network threads and socket flavour: native epoll when its library loads (Linux x86_64 with the optional
 * {@code netty-transport-native-epoll} jar), NIO otherwise. One transport may serve several communicators, e.g. all
 * ranks of a {@code LocalCluster}.
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
     * @param threads event-loop threads; reductions run on them, so one or two per communicator is plenty
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
