package dev.anvil.engine.launch;

import dev.anvil.engine.cli.Cli;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfEnvironmentVariable;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code anvil allreduce-bench} and the sizes it reads. */
class AllReduceBenchTest {

    private static final Pattern ROW = Pattern.compile(
            "(?m)^ +(\\S+) +(\\d+) +(\\d+\\.\\d+) +(\\d+\\.\\d+) +(\\d+\\.\\d+)$");

    @Test
    void twoRanksPrintTimeAlgbwAndBusbwForFiveSizesUpToTheGivenOne() {
        Cli.Run run = Cli.run("allreduce-bench", "--world-size", "2", "--size", "256KB", "--iters", "3",
                "--warmup", "1", "--warmup-seconds", "0", "--transport", "tcp");
        assertEquals(0, run.exit(), run.transcript());
        assertTrue(run.out().contains("2 ranks (in this process, --transport tcp), fp32 sum, 3 iterations after 1"
                + " warmup"), run.transcript());
        assertTrue(run.out().contains("time (ms)  algbw (GB/s)  busbw (GB/s)"), run.transcript());
        Matcher row = ROW.matcher(run.out());
        List<String> sizes = new ArrayList<>();
        while (row.find()) {
            sizes.add(row.group(1));
            long bytes = ByteSize.parse(row.group(1));
            assertEquals(bytes / 4, Long.parseLong(row.group(2)));
            double ms = Double.parseDouble(row.group(3));
            double algbw = Double.parseDouble(row.group(4));
            assertEquals(bytes / (ms / 1e3) / 1e9, algbw, 0.0015 + algbw * 0.01, "algbw = size / time");
            assertEquals(algbw, Double.parseDouble(row.group(5)), 0.0015, "busbw = algbw · 2(R-1)/R = algbw for R=2");
        }
        assertEquals(List.of("1KB", "4KB", "16KB", "64KB", "256KB"), sizes, run.transcript());
    }

    @Test
    void bf16IsReducedAndCheckedToo() {
        Cli.Run run = Cli.run("allreduce-bench", "--world-size", "3", "--size", "12KB", "--dtype", "bf16",
                "--iters", "2", "--warmup", "0");
        assertEquals(0, run.exit(), run.transcript());
        assertTrue(run.out().contains("3 ranks (in this process, --transport auto), bf16 sum"), run.transcript());
        assertTrue(run.out().matches("(?s).* +12KB +6144 .*"), run.transcript());
    }

    @Test
    void sizesReadKbMbGbAsPowersOf1024AndSayWhatASizeLooksLike() {
        assertEquals(4096, ByteSize.parse("4KB"));
        assertEquals(64L << 20, ByteSize.parse("64MB"));
        assertEquals(64L << 20, ByteSize.parse("64mib"));
        assertEquals(1L << 30, ByteSize.parse("1GB"));
        assertEquals(100, ByteSize.parse("100"));
        assertEquals("64MB", ByteSize.format(64L << 20));
        assertEquals("1536KB", ByteSize.format(1536 << 10));
        var e = assertThrows(IllegalArgumentException.class, () -> ByteSize.parse("1.5GB"));
        assertTrue(e.getMessage().contains("e.g. 64MB"), e.getMessage());
        assertEquals(List.of(64L, 256L, 1024L), AllReduceBenchCommand.sizes(1024, 64, 4));
    }

    @Test
    @DisabledIfEnvironmentVariable(named = "RANK", matches = ".*", disabledReason = "would join that job")
    @DisabledIfEnvironmentVariable(named = "SLURM_PROCID", matches = ".*", disabledReason = "would join that job")
    void withoutWorldSizeOrALauncherItSaysHowToRun() {
        Cli.Run run = Cli.run("allreduce-bench", "--size", "4KB");
        assertEquals(1, run.exit(), run.transcript());
        assertTrue(run.err().contains("give --world-size R to run R ranks in this process"), run.transcript());
    }
}
