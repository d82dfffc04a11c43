package dev.anvil.collective.ring;

import dev.anvil.collective.CollectiveException;
import dev.anvil.collective.DataTransport;
import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.link.Connection;
import dev.anvil.collective.link.Endpoint;
import dev.anvil.collective.link.ShmFifo;
import dev.anvil.collective.proto.DataTransportChoice;
import dev.anvil.collective.proto.Header;
import dev.anvil.collective.proto.Hello;
import dev.anvil.collective.proto.HelloAck;
import dev.anvil.collective.proto.Refused;
import dev.anvil.collective.proto.ShmAttach;
import dev.anvil.collective.transport.Connector;
import dev.anvil.collective.transport.Frames;
import com.google.protobuf.ByteString;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.channels.SocketChannel;
import java.time.Instant;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;

/**
 * The ring connection handshake, one connection per channel. The rank connecting to its right neighbour sends Hello
 * (rank, world size, job token, slice size, channel, host identity, transport); the neighbour checks every field,
 * the token in constant time, and answers HelloAck or Refused. Until then the connection may carry nothing but the
 * Hello, so an outsider cannot make a rank allocate more than one small header. Afterwards the connection carries
 * binary data frames.
 *
 * <p>The accepting rank also chooses the transport: shared memory when both ranks allow it and their
 * {@link dev.anvil.collective.link.HostIdentity host identities} are equal. It then creates the FIFO and names it in
 * the HelloAck; the connecting rank maps it and answers ShmAttach; the file is unlinked once both have mapped it.
 * Should the mapping fail (another {@code /dev/shm}), both fall back to TCP unless shared memory was demanded.
 */
public final class RingHandshake {
    /** Largest control header on a ring connection. */
    public static final int MAX_HEADER_BYTES = 4096;
    private static final Set<Header.BodyCase> BEFORE_HELLO = EnumSet.of(Header.BodyCase.HELLO);
    private static final Set<Header.BodyCase> ANSWER = EnumSet.of(Header.BodyCase.HELLO_ACK,
            Header.BodyCase.REFUSED);
    private static final Set<Header.BodyCase> ATTACH = EnumSet.of(Header.BodyCase.SHM_ATTACH);
    /** How long a refused connection is read from, and discarded, so the refusal reaches the peer. */
    private static final long REFUSAL_LINGER_MILLIS = 1000;

    private static final System.Logger LOG = System.getLogger(RingHandshake.class.getName());

    private RingHandshake() {
    }

    /**
     * What both ends of every ring connection must agree on.
     *
     * @param rank this rank
     * @param ranks world size
     * @param sliceBytes largest chunk payload
     * @param channels rings run side by side
     * @param token the job token
     * @param tls contexts for mutual TLS, or null for plain TCP
     * @param transport what this rank allows for its data
     * @param hostId this process's {@link dev.anvil.collective.link.HostIdentity}
     */
    public record Terms(int rank, int ranks, int sliceBytes, int channels, JobToken token, Tls tls,
            DataTransport transport, String hostId) {
        int left() {
            return Math.floorMod(rank - 1, ranks);
        }

        int right() {
            return Math.floorMod(rank + 1, ranks);
        }
    }

    /** Server and client TLS contexts. */
    public record Tls(SslContext server, SslContext client) {
    }

    /** A refused connection: the peer was told {@code getMessage()} and the connection closed. */
    static final class Refusal extends IOException {
        Refusal(String reason) {
            super(reason);
        }
    }

    /**
     * Server side: runs TLS if configured, reads the Hello and checks it.
     *
     * @param claim claims a channel for the left neighbour; false when it is already connected
     * @return the connection and its channel
     * @throws Refusal after telling the peer why
     * @throws IOException when the connection failed (TLS refused, closed, timed out, malformed Hello)
     */
    static Accepted accept(SocketChannel socket, Terms terms, Claim claim, long deadlineNanos) throws IOException {
        SSLEngine engine = terms.tls() == null ? null : terms.tls().server().newEngine(ByteBufAllocator.DEFAULT);
        Endpoint endpoint = Endpoint.open(socket, engine, terms.sliceBytes(), deadlineNanos);
        try {
            Header h;
            try {
                h = endpoint.readFrame(MAX_HEADER_BYTES, BEFORE_HELLO, deadlineNanos);
            } catch (SocketTimeoutException e) {
                throw refuse(endpoint, "no Hello within the handshake timeout", deadlineNanos);
            } catch (Frames.BadFrameException e) {
                throw refuse(endpoint, e.getMessage(), deadlineNanos);
            }
            Hello hello = h.getHello();
            String problem = problem(hello, terms);
            if (problem != null) {
                throw refuse(endpoint, problem, deadlineNanos);
            }
            // Refuses a transport mismatch before the channel is claimed: a claim is for a connection that is used.
            boolean shm = wantsShm(hello, terms, endpoint, deadlineNanos);
            if (!claim.claim(hello.getChannel())) {
                throw refuse(endpoint, "rank " + terms.rank() + "'s left neighbour is already connected on channel "
                        + hello.getChannel(), deadlineNanos);
            }
            ShmFifo fifo = shm ? ShmFifo.create(ShmFifo.SLOTS, terms.sliceBytes()) : null;
            HelloAck.Builder ack = HelloAck.newBuilder().setRank(terms.rank());
            if (fifo != null) {
                ack.setShmPath(fifo.path()).setShmSlots(fifo.slots()).setShmSlotBytes(fifo.slotBytes());
            }
            try {
                endpoint.writeFrame(Header.newBuilder().setHelloAck(ack).build(), deadlineNanos);
                if (fifo != null) {
                    String error = endpoint.readFrame(MAX_HEADER_BYTES, ATTACH, deadlineNanos).getShmAttach()
                            .getError();
                    fifo.unlink();
                    if (!error.isEmpty()) {
                        fifo.close();
                        fifo = null;
                        if (demandsShm(hello, terms)) {
                            throw new IOException("rank " + hello.getRank() + " could not map shared memory: "
                                    + error);
                        }
                    }
                }
            } catch (IOException | RuntimeException e) {
                if (fifo != null) {
                    fifo.close();
                }
                throw e;
            }
            return new Accepted(hello.getChannel(), new Connection(endpoint, fifo));
        } catch (IOException | RuntimeException e) {
            endpoint.close();
            throw e;
        }
    }

    /** Whether this edge's data goes through shared memory; refuses combinations that cannot work. */
    private static boolean wantsShm(Hello hello, Terms terms, Endpoint endpoint, long deadlineNanos)
            throws Refusal {
        DataTransport theirs = transport(hello.getTransport());
        DataTransport mine = terms.transport();
        if (mine != theirs && mine != DataTransport.AUTO && theirs != DataTransport.AUTO) {
            throw refuse(endpoint, "rank " + hello.getRank() + " uses --transport " + name(theirs) + " but rank "
                    + terms.rank() + " uses --transport " + name(mine) + "; use the same --transport on every rank",
                    deadlineNanos);
        }
        boolean sameHost = !terms.hostId().isEmpty() && terms.hostId().equals(hello.getHostId());
        if (!demandsShm(hello, terms)) {
            return mine == DataTransport.AUTO && theirs == DataTransport.AUTO && sameHost && ShmFifo.supported();
        }
        if (!sameHost) {
            throw refuse(endpoint, "--transport shm needs neighbours on one host, but rank " + hello.getRank()
                    + " (" + hello.getHostId() + ") and rank " + terms.rank() + " (" + terms.hostId() + ") differ in"
                    + " host name, boot or network namespace; use --transport auto or tcp", deadlineNanos);
        }
        if (!ShmFifo.supported()) {
            throw refuse(endpoint, "--transport shm needs Linux with a writable /dev/shm; use --transport auto or"
                    + " tcp", deadlineNanos);
        }
        return true;
    }

    private static boolean demandsShm(Hello hello, Terms terms) {
        return terms.transport() == DataTransport.SHM || hello.getTransport() == DataTransportChoice.DATA_TRANSPORT_SHM;
    }

    private static DataTransport transport(DataTransportChoice wire) {
        return switch (wire) {
            case DATA_TRANSPORT_TCP -> DataTransport.TCP;
            case DATA_TRANSPORT_SHM -> DataTransport.SHM;
            default -> DataTransport.AUTO;
        };
    }

    private static DataTransportChoice wire(DataTransport transport) {
        return switch (transport) {
            case AUTO -> DataTransportChoice.DATA_TRANSPORT_AUTO;
            case TCP -> DataTransportChoice.DATA_TRANSPORT_TCP;
            case SHM -> DataTransportChoice.DATA_TRANSPORT_SHM;
        };
    }

    private static String name(DataTransport transport) {
        return transport.name().toLowerCase(Locale.ROOT);
    }

    /** A handshaken connection from the left neighbour. */
    record Accepted(int channel, Connection connection) {
    }

    /** Claims channels for the left neighbour, each once. */
    interface Claim {
        boolean claim(int channel);
    }

    private static String problem(Hello hello, Terms terms) {
        if (!terms.token().matches(hello.getToken().toByteArray())) {
            return "wrong job token; every rank must use the same ANVIL_JOB_TOKEN";
        }
        if (hello.getWorldSize() != terms.ranks()) {
            return "world size " + hello.getWorldSize() + " but rank " + terms.rank() + " has " + terms.ranks();
        }
        if (hello.getRank() != terms.left()) {
            return "rank " + hello.getRank() + " connected but rank " + terms.rank() + "'s left neighbour is rank "
                    + terms.left();
        }
        if (hello.getSliceBytes() != terms.sliceBytes()) {
            return "slice size " + hello.getSliceBytes() + " but rank " + terms.rank() + " uses " + terms.sliceBytes()
                    + "; use the same slice size on every rank";
        }
        if (hello.getChannels() != terms.channels()) {
            return hello.getChannels() + " channels but rank " + terms.rank() + " uses " + terms.channels()
                    + "; use the same --comm-channels on every rank";
        }
        if (hello.getChannel() >= terms.channels()) {
            return "channel " + hello.getChannel() + " is not in 0.." + (terms.channels() - 1);
        }
        return null;
    }

    /** Tells the peer why it is refused and closes the connection once it has read that. */
    private static Refusal refuse(Endpoint endpoint, String reason, long deadlineNanos) {
        try {
            endpoint.writeFrame(Header.newBuilder().setRefused(Refused.newBuilder().setReason(reason)).build(),
                    deadlineNanos);
            endpoint.closeAfterLastWrite(REFUSAL_LINGER_MILLIS);
        } catch (IOException ignored) {
            // the peer may have gone; the refusal is logged either way
        }
        return new Refusal(reason);
    }

    /**
     * Client side: connects channel {@code channel} to the right neighbour and introduces this rank.
     *
     * @param peer "rank N (host:port)", for messages
     * @throws CollectiveException naming the problem: refused, unreachable, TLS failure, deadline
     */
    public static Connection connect(String host, int port, Terms terms, int channel, String peer, Instant deadline) {
        long deadlineNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(
                Math.max(1, deadline.toEpochMilli() - System.currentTimeMillis()));
        SocketChannel socket = Connector.connect(host, port, deadline, peer);
        Endpoint endpoint = null;
        try {
            SSLEngine engine = terms.tls() == null ? null
                    : terms.tls().client().newEngine(ByteBufAllocator.DEFAULT, host, port);
            endpoint = Endpoint.open(socket, engine, terms.sliceBytes(), deadlineNanos);
            Hello hello = Hello.newBuilder()
                    .setRank(terms.rank())
                    .setWorldSize(terms.ranks())
                    .setToken(ByteString.copyFrom(terms.token().bytes()))
                    .setSliceBytes(terms.sliceBytes())
                    .setChannel(channel)
                    .setChannels(terms.channels())
                    .setHostId(terms.hostId())
                    .setTransport(wire(terms.transport()))
                    .build();
            endpoint.writeFrame(Header.newBuilder().setHello(hello).build(), deadlineNanos);
            Header answer = endpoint.readFrame(MAX_HEADER_BYTES, ANSWER, deadlineNanos);
            if (answer.hasRefused()) {
                throw new CollectiveException(peer + " refused the ring connection: "
                        + answer.getRefused().getReason());
            }
            HelloAck ack = answer.getHelloAck();
            if (ack.getRank() != terms.right()) {
                throw new CollectiveException(peer + " answered as rank " + ack.getRank());
            }
            return new Connection(endpoint, ack.getShmPath().isEmpty() ? null : attach(endpoint, ack, terms, peer,
                    deadlineNanos));
        } catch (IOException e) {
            close(endpoint, socket);
            boolean tls = e instanceof SSLException;
            throw new CollectiveException("ring connection to " + peer + " failed: " + e.getMessage()
                    + (tls ? "; check that both nodes' certificates are signed by the job CA" : ""), e);
        } catch (RuntimeException e) {
            close(endpoint, socket);
            throw e;
        }
    }

    /** Maps the FIFO the right neighbour created, and tells it whether that worked. */
    private static ShmFifo attach(Endpoint endpoint, HelloAck ack, Terms terms, String peer, long deadlineNanos)
            throws IOException {
        if (terms.transport() == DataTransport.TCP) {
            throw new IOException(peer + " chose shared memory although this rank uses --transport tcp");
        }
        ShmFifo fifo;
        try {
            fifo = ShmFifo.attach(ack.getShmPath(), ack.getShmSlots(), ack.getShmSlotBytes());
        } catch (IOException e) {
            String error = e.toString();
            endpoint.writeFrame(Header.newBuilder().setShmAttach(ShmAttach.newBuilder().setError(error)).build(),
                    deadlineNanos);
            if (terms.transport() == DataTransport.SHM) {
                throw new IOException("cannot map " + peer + "'s shared memory " + ack.getShmPath() + ": " + error, e);
            }
            LOG.log(System.Logger.Level.INFO, "rank {0}: using TCP to {1}: cannot map its shared memory ({2})",
                    terms.rank(), peer, error);
            return null;
        }
        try {
            endpoint.writeFrame(Header.newBuilder().setShmAttach(ShmAttach.getDefaultInstance()).build(),
                    deadlineNanos);
            return fifo;
        } catch (IOException | RuntimeException e) {
            fifo.close();
            throw e;
        }
    }

    private static void close(Endpoint endpoint, SocketChannel socket) {
        if (endpoint != null) {
            endpoint.close();
        } else {
            try {
                socket.close();
            } catch (IOException ignored) {
                // nothing more to do
            }
        }
    }
}
