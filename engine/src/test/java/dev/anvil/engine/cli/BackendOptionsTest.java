package dev.anvil.engine.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Which GPU, and how many CPU threads, a data-parallel rank trains on. */
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
}
