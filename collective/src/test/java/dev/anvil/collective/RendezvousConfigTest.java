package dev.anvil.collective;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.anvil.collective.auth.JobToken;
import dev.anvil.collective.rendezvous.RendezvousConfig;
import dev.anvil.collective.rendezvous.SlurmNodeList;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RendezvousConfigTest {

    @Test
    void torchrunVariablesGiveMasterRankWorldAndLocalRank() {
        var c = RendezvousConfig.fromTorchrun(Map.of("MASTER_ADDR", "10.1.2.3", "MASTER_PORT", "29511", "RANK", "5",
                "WORLD_SIZE", "8", "LOCAL_RANK", "1"));
        assertEquals(new RendezvousConfig("10.1.2.3", 29511, 5, 8, 1), c);
        assertEquals(c, RendezvousConfig.fromEnvironment(Map.of("MASTER_ADDR", "10.1.2.3", "MASTER_PORT", "29511",
                "RANK", "5", "WORLD_SIZE", "8", "LOCAL_RANK", "1")));
    }

    @Test
    void slurmVariablesUseTheFirstNodeOfTheCompressedListAndTheDefaultPort() {
        var c = RendezvousConfig.fromSlurm(Map.of("SLURM_PROCID", "6", "SLURM_NTASKS", "16", "SLURM_LOCALID", "2",
                "SLURM_JOB_NODELIST", "node[01-04,07],gpu5"));
        assertEquals(new RendezvousConfig("node01", RendezvousConfig.DEFAULT_PORT, 6, 16, 2), c);
        var withPort = RendezvousConfig.fromEnvironment(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "2",
                "SLURM_LOCALID", "0", "SLURM_JOB_NODELIST", "gpu5,node[01-02]", "MASTER_PORT", "40000"));
        assertEquals(new RendezvousConfig("gpu5", 40000, 0, 2, 0), withPort);
    }

    @Test
    void slurmNodeListsExpandRangesPaddingAndProducts() {
        assertEquals(List.of("node01", "node02", "node03", "node04", "node07", "gpu5"),
                SlurmNodeList.expand("node[01-04,07],gpu5"));
        assertEquals(List.of("rack1-n08", "rack1-n09", "rack1-n10", "rack2-n08", "rack2-n09", "rack2-n10"),
                SlurmNodeList.expand("rack[1-2]-n[08-10]"));
        assertEquals(List.of("a", "b"), SlurmNodeList.expand("a,b"));
        assertEquals("rack1-n08", SlurmNodeList.first("rack[1-2]-n[08-10],x"));
        assertEquals("node001", SlurmNodeList.first("node[001-999]"));
        assertThrows(IllegalArgumentException.class, () -> SlurmNodeList.expand("node[01-"));
        assertThrows(IllegalArgumentException.class, () -> SlurmNodeList.expand("node[5-1]"));
        assertThrows(IllegalArgumentException.class, () -> SlurmNodeList.expand(""));
    }

    @Test
    void missingOrMalformedVariablesSayWhichToSet() {
        var e = assertThrows(CollectiveException.class, () -> RendezvousConfig.fromTorchrun(Map.of("RANK", "0")));
        assertTrue(e.getMessage().contains("MASTER_ADDR"), e.getMessage());
        e = assertThrows(CollectiveException.class, () -> RendezvousConfig.fromTorchrun(Map.of("MASTER_ADDR", "h",
                "MASTER_PORT", "x", "RANK", "0", "WORLD_SIZE", "1")));
        assertTrue(e.getMessage().contains("MASTER_PORT='x'"), e.getMessage());
        e = assertThrows(CollectiveException.class, () -> RendezvousConfig.of("h", 1, 4, 4));
        assertTrue(e.getMessage().contains("rank 4"), e.getMessage());
        e = assertThrows(CollectiveException.class, () -> RendezvousConfig.fromEnvironment(Map.of()));
        assertTrue(e.getMessage().contains("torchrun"), e.getMessage());
    }

    @Test
    void jobTokenComesFromTheEnvironmentOrAFile(@TempDir Path dir) throws Exception {
        JobToken direct = JobToken.fromEnvironment(Map.of(JobToken.ENV_TOKEN, "s3cret"));
        assertTrue(direct.matches("s3cret".getBytes()));
        Path file = Files.writeString(dir.resolve("token"), "from-file\n");
        JobToken fromFile = JobToken.fromEnvironment(Map.of(JobToken.ENV_TOKEN_FILE, file.toString()));
        assertTrue(fromFile.matches("from-file".getBytes()));
        assertTrue(!fromFile.matches("from-fil".getBytes()));
        var e = assertThrows(CollectiveException.class, () -> JobToken.fromEnvironment(Map.of()));
        assertTrue(e.getMessage().contains(JobToken.ENV_TOKEN), e.getMessage());
    }
}
