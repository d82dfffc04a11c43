package dev.anvil.bench.harness;

import dev.anvil.engine.cli.AnvilMain;
import dev.anvil.engine.train.RankMemory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchTrainCommandTest {

    @Test
    void tinyOnTheCpuWritesJsonAndCsvThatParseBack(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("tiny.json");
        Path csv = dir.resolve("runs.csv");
        // Through AnvilMain, so the ServiceLoader registration is checked too.
        int rc = AnvilMain.run("bench-train", "--preset", "tiny", "--steps", "3", "--warmup", "1",
                "--price-per-gpu-hour", "18.5", "--json", json.toString(), "--csv", csv.toString());
        assertEquals(0, rc);

        BenchResult r = ResultFiles.readJson(json);
        assertEquals("tiny", r.preset());
        assertEquals(3, r.steps());
        assertEquals(256, r.tokensPerStep());
        assertTrue(r.tokensPerS().min() > 0 && r.tokensPerS().min() <= r.tokensPerS().median()
                && r.tokensPerS().median() <= r.tokensPerS().max(), r.tokensPerS().toString());
        assertEquals(List.of("data", "forward", "lm_head", "backward", "communication", "optimizer"), List.copyOf(r.phaseMs().keySet()));
        assertEquals(0.0, r.phaseMs().get("communication"));
        assertEquals(0, r.zero());
        assertTrue(r.memoryPerRank().activations() > 0, "activations are counted once a step has run");
        assertEquals(2 * r.memoryPerRank().parameters(), r.memoryPerRank().optimizerState(), "fp32 AdamW: m and v");
        assertEquals(870_912, r.flopsPerToken());
        assertTrue(r.mfu() > 0 && r.peakSource().startsWith("measured CPU matmul peak"), r.peakSource());
        assertEquals(Cost.perMillionTokens(18.5, 1, r.tokensPerS().median()), r.costPerMillionTokens(), 1e-12);
        assertTrue(r.heapPeakBytes() > 0);
        assertNull(r.devicePeakBytes());

        List<String> lines = Files.readAllLines(csv);
        assertEquals(2, lines.size());
        assertEquals(ResultFiles.csvHeader(), lines.get(0));
        List<String> header = fields(lines.get(0));
        List<String> row = fields(lines.get(1));
        assertEquals(header.size(), row.size());
        assertEquals(r.backend(), row.get(header.indexOf("backend")), "a field with a comma is quoted");
        assertEquals(r.tokensPerS().median(), Double.parseDouble(row.get(header.indexOf("tokens_per_s_median"))),
                r.tokensPerS().median() * 1e-5);

        ResultFiles.appendCsv(r, csv);
        assertEquals(3, Files.readAllLines(csv).size(), "the header is written once");
    }

    @Test
    void aCsvWithOtherColumnsIsNotAppendedTo(@TempDir Path dir) throws IOException {
        Path csv = Files.writeString(dir.resolve("old.csv"), "a,b\n1,2\n");
        BenchResult any = new BenchResult("dev", "t", "tiny", "m", 1, "cpu", "fp32", 1, 1, 1, 1, 1, 0, 1,
                new Stats(1, 1, 1), new Stats(1, 1, 1), java.util.Map.of(), 1, 1, 1.0, "s", 1.0, 1, 0, null, null,
                null, 1, 0, null);
        IOException e = assertThrows(IOException.class, () -> ResultFiles.appendCsv(any, csv));
        assertTrue(e.getMessage().contains("new --csv file"), e.getMessage());
    }

    @Test
    void aZeroStageOtherThanZeroOrOneIsRefused() {
        PrintStream stderr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            rc = AnvilMain.run("bench-train", "--zero", "2");
        } finally {
            System.setErr(stderr);
        }
        assertEquals(1, rc);
        assertEquals("anvil bench-train: error: --zero must be 0 or 1, got 2" + System.lineSeparator(),
                err.toString(StandardCharsets.UTF_8));
    }

    /** Runs {@code bin/launch --nproc-per-node 2 -- bench-train ...} in child JVMs; returns rank 0's result. */
    private static BenchResult launchTwoRanks(Path dir, String name, String... more) throws Exception {
        Path json = dir.resolve(name + ".json");
        Path log = dir.resolve(name + ".log");
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), AnvilMain.class.getName(),
                "launch", "--nproc-per-node", "2", "--", "bench-train", "--preset", "tiny", "--steps", "2",
                "--warmup", "1", "--threads", "1", "--peak-tflops", "1", "--json", json.toString(),
                "--csv", dir.resolve(name + ".csv").toString()));
        command.addAll(List.of(more));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        List.of("ANVIL_JOB_TOKEN", "ANVIL_JOB_TOKEN_FILE", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
                "LOCAL_RANK", "SLURM_PROCID").forEach(builder.environment()::remove);
        Process launcher = builder.start();
        assertTrue(launcher.waitFor(3, TimeUnit.MINUTES), "bench-train under the launcher did not finish");
        assertEquals(0, launcher.exitValue(), Files.readString(log));
        return ResultFiles.readJson(json);
    }

    @Test
    void underTheLauncherItTrainsDataParallelAndZeroOneHalvesEachRanksOptimizerState(@TempDir Path dir)
            throws Exception {
        BenchResult allReduce = launchTwoRanks(dir, "all-reduce");
        BenchResult sharded = launchTwoRanks(dir, "zero", "--zero", "1");
        assertEquals(2, allReduce.worldSize());
        assertEquals(512, allReduce.tokensPerStep(), "B·T·R");
        assertEquals(0, allReduce.zero());
        assertEquals(1, sharded.zero());
        assertTrue(allReduce.phaseMs().get("communication") > 0, "the ranks wait for the all-reduce");
        RankMemory all = allReduce.memoryPerRank();
        RankMemory half = sharded.memoryPerRank();
        assertEquals(all.parameters(), half.parameters());
        assertEquals(all.gradients(), half.gradients());
        assertEquals(all.activations(), half.activations());
        // Each rank owns half of every bucket, give or take an element of each.
        assertEquals(all.optimizerState() / 2.0, half.optimizerState(), 8.0 * 8);
    }

    /** Splits an RFC 4180 line. */
    private static List<String> fields(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder cell = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char ch = line.charAt(i);
            if (quoted && ch == '"' && i + 1 < line.length() && line.charAt(i + 1) == '"') {
                cell.append('"');
                i++;
            } else if (ch == '"') {
                quoted = !quoted;
            } else if (ch == ',' && !quoted) {
                out.add(cell.toString());
                cell.setLength(0);
            } else {
                cell.append(ch);
            }
        }
        out.add(cell.toString());
        return out;
    }
}
