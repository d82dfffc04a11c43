package dev.anvil.collective.link;

import dev.anvil.collective.proto.Abort;

/** What every data link end shares: its socket, and the socket's duties besides data (see {@link LinkEnd}). */
abstract class SocketLink {
    final Endpoint endpoint;
    final LinkEnd end;

    SocketLink(Endpoint endpoint, LinkEnd end) {
        this.endpoint = endpoint;
        this.end = end;
    }

    public void wakeup() {
        end.wakeup();
    }

    public void abort(Abort abort) {
        end.abort(abort);
    }

    public void close() {
        endpoint.close();
    }
}
