package dev.anvil.engine.cli;

import dev.anvil.engine.model.Recompute;
import dev.anvil.kernels.cuda.AttentionKernels;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which GPU, how many CPU threads and which attention kernels a rank trains with. */
class BackendOptionsTest {

    @Test
    void eachLocalRankTakesItsOwnGpuOrTheOnlyOneItIsShown() {
        assertEquals(0, BackendOptions.cudaDevice(0, 4));
        assertEquals(3, BackendOptions.cudaDevice(3, 4));
        assertEquals(0, BackendOptions.cudaDevice(3, 1)); // srun --gpus-per-task=1: its GPU is device 0
        assertEquals(1, BackendOptions.cudaDevice(5, 4)); // --rank 5 on the second 4-GPU node
    }

    @Test
    void localRanksShareTheCoresOfTheirNode() {
        assertEquals(16, BackendOptions.cpuThreads(16, null));
        assertEquals(4, BackendOptions.cpuThreads(16, "4"));
        assertEquals(1, BackendOptions.cpuThreads(2, "4")); // more ranks than cores: one thread each
    }

    @Test
    void attentionKernelsAreTensorCoresUnlessFmaIsAsked() {
        assertEquals(AttentionKernels.TC, parse().attentionKernels());
        assertEquals(AttentionKernels.TC, parse("--attention", "tc").attentionKernels());
        assertEquals(AttentionKernels.FMA, parse("--attention", "fma").attentionKernels());
        BackendOptions wrong = parse("--attention", "flash");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, wrong::open);
        assertTrue(e.getMessage().contains("--attention must be tc or fma, got 'flash'"), e.getMessage());
    }

    @Test
    void recomputeNamesWhatTheBackwardPassRecomputes() {
        assertEquals(Recompute.NONE, parse().recompute());
        assertEquals(Recompute.ATTENTION, parse("--recompute", "attention").recompute());
        assertEquals(Recompute.BLOCK, parse("--recompute", "block").recompute());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                parse("--recompute", "all")::open);
        assertTrue(e.getMessage().contains("--recompute must be none, attention or block, got 'all'"), e.getMessage());
    }

    private static BackendOptions parse(String... args) {
        BackendOptions options = new BackendOptions();
        new CommandLine(options).parseArgs(args);
        return options;
    }
}
