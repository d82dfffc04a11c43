package dev.anvil.kernels.cuda;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What the build says about the tensor-core attention kernels, checked without a GPU: their PTX for
 * sm_80 and sm_90a runs its tile products as bf16 {@code mma.sync} (not fp32 FMAs), loads fragments
 * with {@code ldmatrix} and streams tiles with {@code cp.async}; and ptxas's resource report shows no
 * register spills (no stack frame) for any of them on either target. The build keeps the PTX and
 * the report in {@code target/cuda} (the {@code anvil.cuda.build} property).
 */
class AttentionPtxTest {

    private static final List<String> TARGETS = List.of("80", "90a");
    private static final String MMA = "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32";
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z0-9_]+)\\s*\\(");
    private static final Pattern COMPILING =
            Pattern.compile("Compiling entry function '([A-Za-z0-9_]+)' for 'sm_([0-9a-z]+)'");
    private static final Pattern FRAME =
            Pattern.compile("(\\d+) bytes stack frame, (\\d+) bytes spill stores, (\\d+) bytes spill loads");
    private static final Pattern USED = Pattern.compile("Used (\\d+) registers");

    private static Path build;

    @BeforeAll
    static void needsTheKernelBuild() {
        assumeTrue("true".equals(System.getProperty("anvil.cuda.kernels.built")),
                "the build did not compile the CUDA kernels (no nvcc)");
        // Set by the build's test run; a distribution's test jar (bin/anvil-test) has no build folder.
        String dir = System.getProperty("anvil.cuda.build");
        assumeTrue(dir != null, "no anvil.cuda.build: not run by the build");
        build = Path.of(dir);
    }

    /** The tensor-core entry points the backend launches. */
    private static List<String> tcEntries() {
        return CudaAttention.ENTRY_POINTS.stream().filter(n -> n.startsWith("attention_tc_")).toList();
    }

    @Test
    void tensorCoreAttentionRunsOnBf16MmaInThePtxOfEachTarget() throws IOException {
        assertEquals(6, tcEntries().size(), "forward, dK/dV and dQ for head sizes 64 and 128: " + tcEntries());
        for (String target : TARGETS) {
            Map<String, String> bodies = entryBodies(Files.readString(build.resolve("anvil_kernels.compute_" + target + ".ptx")));
            for (String entry : tcEntries()) {
                String body = bodies.get(entry);
                assertTrue(body != null, entry + " is not in the compute_" + target + " PTX");
                for (String instruction : List.of(MMA, "ldmatrix.sync.aligned.m8n8.x4.shared.b16",
                        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16", "cp.async.cg.shared.global",
                        "cp.async.wait_group")) {
                    assertTrue(body.contains(instruction), entry + " (compute_" + target + ") has no " + instruction);
                }
                assertTrue(count(body, MMA) >= 16, entry + " (compute_" + target + ") has only " + count(body, MMA)
                        + " mma instructions: its tile loops were not unrolled");
            }
            // The FMA kernels stay on CUDA cores: the reference path must not change with the new one.
            assertTrue(bodies.keySet().stream().filter(n -> n.startsWith("attention_forward_bf16"))
                    .noneMatch(n -> bodies.get(n).contains("mma.sync")), "the FMA attention kernels use mma");
        }
    }

    @Test
    void tensorCoreAttentionKernelsSpillNoRegistersOnEitherTarget() throws IOException {
        Map<String, int[]> usage = resourceUsage(Files.readString(build.resolve("anvil_kernels.resource-usage.txt")));
        for (String target : TARGETS) {
            for (String entry : tcEntries()) {
                int[] u = usage.get(entry + "@sm_" + target);
                assertTrue(u != null, "ptxas reported nothing for " + entry + " on sm_" + target);
                assertEquals(0, u[1] + u[2], entry + " spills on sm_" + target + ": " + u[1] + " bytes stored, "
                        + u[2] + " loaded");
                assertEquals(0, u[0], entry + " has a " + u[0] + "-byte stack frame on sm_" + target);
                System.out.printf("%s sm_%s: %d registers, %d bytes stack, %d/%d bytes spilled%n", entry, target, u[3],
                        u[0], u[1], u[2]);
            }
        }
    }

    /** Each {@code .entry}'s text, from its name to the next entry. */
    static Map<String, String> entryBodies(String ptx) {
        Map<String, String> bodies = new TreeMap<>();
        Matcher m = ENTRY.matcher(ptx);
        List<Integer> starts = new ArrayList<>();
        List<String> names = new ArrayList<>();
        while (m.find()) {
            starts.add(m.start());
            names.add(m.group(1));
        }
        for (int i = 0; i < names.size(); i++) {
            int end = i + 1 < names.size() ? starts.get(i + 1) : ptx.length();
            bodies.put(names.get(i), ptx.substring(starts.get(i), end));
        }
        return bodies;
    }

    /**
     * ptxas's report per {@code entry@sm_target}: {stack frame, spill stores, spill loads, registers}
     * in bytes (registers as a count).
     */
    static Map<String, int[]> resourceUsage(String report) {
        Map<String, int[]> usage = new TreeMap<>();
        String current = null;
        for (String line : report.split("\n")) {
            Matcher c = COMPILING.matcher(line);
            if (c.find()) {
                current = c.group(1) + "@sm_" + c.group(2);
                usage.put(current, new int[] {-1, -1, -1, -1});
                continue;
            }
            if (current == null) {
                continue;
            }
            Matcher f = FRAME.matcher(line);
            if (f.find()) {
                int[] u = usage.get(current);
                u[0] = Integer.parseInt(f.group(1));
                u[1] = Integer.parseInt(f.group(2));
                u[2] = Integer.parseInt(f.group(3));
            }
            Matcher r = USED.matcher(line);
            if (r.find()) {
                usage.get(current)[3] = Integer.parseInt(r.group(1));
            }
        }
        return usage;
    }

    private static int count(String text, String what) {
        int n = 0;
        for (int i = text.indexOf(what); i >= 0; i = text.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }
}
