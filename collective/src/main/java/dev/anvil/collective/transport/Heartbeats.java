package dev.anvil.collective.transport;

import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Heartbeat;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.timeout.IdleState;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Keeps a connection provably alive: sends a heartbeat when nothing was written for a quarter of the peer timeout,
 * swallows the peer's heartbeats, and fires {@link PeerSilent} when nothing at all was read for the whole timeout
 * (a hung or frozen peer keeps its socket open, so only silence reveals it).
 */
public final class Heartbeats extends ChannelDuplexHandler {
    /** User event: the peer sent nothing, not even a heartbeat, for the peer timeout. */
    public record PeerSilent(Duration silence) {
    }

    private static final Header HEARTBEAT = Header.newBuilder().setHeartbeat(Heartbeat.getDefaultInstance()).build();

    private final Duration timeout;

    private Heartbeats(Duration timeout) {
        this.timeout = timeout;
    }

    /** Adds the idle detector and this handler, named "idle" and "heartbeats", after the frame decoder. */
    public static void install(io.netty.channel.ChannelPipeline pipeline, Duration timeout) {
        long readerMillis = timeout.toMillis();
        long writerMillis = Math.max(50, readerMillis / 4);
        pipeline.addLast("idle", new IdleStateHandler(readerMillis, writerMillis, 0, TimeUnit.MILLISECONDS));
        pipeline.addLast("heartbeats", new Heartbeats(timeout));
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof Header h && h.getBodyCase() == Header.BodyCase.HEARTBEAT) {
            return;
        }
        ctx.fireChannelRead(msg);
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof IdleStateEvent idle) {
            if (idle.state() == IdleState.WRITER_IDLE) {
                ctx.writeAndFlush(Frames.encode(ctx.alloc(), HEARTBEAT));
            } else if (idle.state() == IdleState.READER_IDLE) {
                ctx.fireUserEventTriggered(new PeerSilent(timeout));
            }
            return;
        }
        super.userEventTriggered(ctx, evt);
    }
}
