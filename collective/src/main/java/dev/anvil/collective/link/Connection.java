package dev.anvil.collective.link;

import java.time.Duration;

/**
 * A ring connection whose handshake succeeded, ready to become a data link.
 *
 * @param endpoint the socket (with TLS when configured)
 */
public record Connection(Endpoint endpoint) {
    /** The receiving end of a link from the left neighbour. */
    public Inbound inbound(LinkControl control, Duration peerTimeout, int sliceBytes) {
        return new TcpInbound(endpoint, control, peerTimeout, sliceBytes, endpoint.encrypted());
    }

    /** The sending end of a link to the right neighbour. */
    public Outbound outbound(LinkControl control, Duration peerTimeout) {
        return new TcpOutbound(endpoint, control, peerTimeout);
    }

    /** Closes it without ever using it. */
    public void close() {
        endpoint.close();
    }
}
