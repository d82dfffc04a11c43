package dev.anvil.engine.cli;

import dev.anvil.collective.CommunicatorOptions;
import dev.anvil.collective.DataTransport;
import dev.anvil.engine.launch.ByteSize;
import picocli.CommandLine.Option;

import java.util.Locale;

/**
 * How the ranks of a data-parallel job move gradients: the transport between neighbours, the number of rings side by
 * side, and the slice each frame carries. Every rank must use the same values; the ring handshake refuses a
 * mismatch, naming the option.
 */
public final class CommOptions {

    @Option(names = "--transport", defaultValue = "auto", paramLabel = "auto|tcp|shm",
            description = "Data between neighbouring ranks: shm (shared memory, same host), tcp, or auto: shared memory"
                    + " where ranks share a host, TCP elsewhere (default: ${DEFAULT-VALUE})")
    String transport;

    @Option(names = "--comm-channels", defaultValue = "0", paramLabel = "N",
            description = "Rings run side by side over parts of each gradient bucket, each with its own connections"
                    + " and threads; 0 = one per four cores, at most 4 (default: ${DEFAULT-VALUE})")
    int channels;

    @Option(names = "--comm-slice", defaultValue = "1MB", paramLabel = "SIZE",
            description = "Largest piece of a bucket sent in one frame; the pipeline keeps a few in flight per link"
                    + " (default: ${DEFAULT-VALUE})")
    String slice;

    /** The transport as given ("auto", "tcp" or "shm"). */
    public String transport() {
        return transport;
    }

    /** {@code options} with these settings. */
    public CommunicatorOptions apply(CommunicatorOptions options) {
        DataTransport t = switch (transport.toLowerCase(Locale.ROOT)) {
            case "auto" -> DataTransport.AUTO;
            case "tcp" -> DataTransport.TCP;
            case "shm" -> DataTransport.SHM;
            default -> throw new IllegalArgumentException("--transport must be auto, tcp or shm, got '" + transport + "'");
        };
        if (channels < 0 || channels > 64) {
            throw new IllegalArgumentException("--comm-channels must be in 0..64, got " + channels);
        }
        long bytes = ByteSize.parse(slice);
        if (bytes < 4096 || bytes > (64 << 20)) {
            throw new IllegalArgumentException("--comm-slice must be between 4KB and 64MB, got " + slice);
        }
        return options.withDataTransport(t).withChannels(channels).withSliceBytes((int) bytes);
    }
}
