package dev.anvil.collective.link;

import java.time.Duration;

/**
 * A ring connection whose handshake succeeded, ready to become a data link.
 *
 * @param endpoint the socket (with TLS when configured): all the data with TCP, heartbeats and aborts with shm
 * @param fifo the shared-memory FIFO the data goes through, or null for TCP
 */
public record Connection(Endpoint endpoint, ShmFifo fifo) {
    /** The receiving end of a link from the left neighbour. */
    public Inbound inbound(LinkControl control, Duration peerTimeout, int sliceBytes) {
        return fifo != null ? new ShmInbound(endpoint, fifo, control, peerTimeout)
                : new TcpInbound(endpoint, control, peerTimeout, sliceBytes, endpoint.encrypted());
    }

    /** The sending end of a link to the right neighbour. */
    public Outbound outbound(LinkControl control, Duration peerTimeout) {
        return fifo != null ? new ShmOutbound(endpoint, fifo, control, peerTimeout)
                : new TcpOutbound(endpoint, control, peerTimeout);
    }

    /** Closes it without ever using it. */
    public void close() {
        endpoint.close();
        if (fifo != null) {
            fifo.close();
        }
    }
}
