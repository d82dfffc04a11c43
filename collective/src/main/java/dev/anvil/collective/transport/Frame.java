package dev.anvil.collective.transport;

import dev.anvil.collective.proto.Header;
import io.netty.buffer.ByteBuf;

/**
 * A decoded frame: its header and its raw payload (empty unless the header is a chunk). The receiver owns
 * {@code payload} and must release it.
 */
public record Frame(Header header, ByteBuf payload) {
}
