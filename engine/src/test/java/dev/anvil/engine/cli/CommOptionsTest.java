package dev.anvil.engine.cli;

import dev.anvil.collective.CommunicatorOptions;
import dev.anvil.collective.DataTransport;
import dev.anvil.collective.auth.JobToken;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --transport, --comm-channels and --comm-slice reach the communicator's options, and bad values are named. */
class CommOptionsTest {

    private static final class Command {
        @Mixin
        CommOptions comm;
    }

    private static CommunicatorOptions parse(String... args) {
        Command c = new Command();
        new CommandLine(c).parseArgs(args);
        return c.comm.apply(CommunicatorOptions.defaults(JobToken.random()));
    }

    @Test
    void defaultsAreAutoTransportChannelsFromTheCoresAndOneMegabyteSlices() {
        CommunicatorOptions o = parse();
        assertEquals(DataTransport.AUTO, o.dataTransport());
        assertEquals(0, o.channels());
        assertEquals(CommunicatorOptions.DEFAULT_SLICE_BYTES, o.sliceBytes());
    }

    @Test
    void givenValuesReachTheOptions() {
        CommunicatorOptions o = parse("--transport", "SHM", "--comm-channels", "3", "--comm-slice", "256KB");
        assertEquals(DataTransport.SHM, o.dataTransport());
        assertEquals(3, o.channels());
        assertEquals(256 * 1024, o.sliceBytes());
        assertEquals(DataTransport.TCP, parse("--transport", "tcp").dataTransport());
    }

    @Test
    void badValuesAreRefusedNamingTheOption() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("--transport", "rdma")).getMessage()
                .contains("--transport must be auto, tcp or shm"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("--comm-channels", "-1")).getMessage()
                .contains("--comm-channels must be in 0..64"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("--comm-slice", "1KB")).getMessage()
                .contains("--comm-slice must be between 4KB and 64MB"));
    }
}
