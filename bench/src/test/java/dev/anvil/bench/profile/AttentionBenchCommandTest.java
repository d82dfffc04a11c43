package dev.anvil.bench.profile;

import dev.anvil.engine.cli.AnvilMain;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bench-attention: TFLOPS by the causal count, and the command on the CPU with a small shape. */
class AttentionBenchCommandTest {

    @Test
    void tflopsAreTheCausalFlopCountOverTheMedianTime() {
        // 2·B·T²·C forward: B=8, T=2048, C=2048 is 137.4 GFLOP; in 1 ms that is 137.4 TFLOPS
        double fwd = OpCost.attentionForward(8, 2048, 2048, 16, 2).flops();
        List<String> lines = AttentionBenchCommand.lines(1.0, fwd, 3.5, 3.5 * fwd);
        assertTrue(lines.get(0).endsWith("137.4 TFLOPS"), lines.get(0));
        assertTrue(lines.get(1).endsWith("137.4 TFLOPS"), lines.get(1));
    }

    @Test
    void runsOnTheCpu() {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream saved = System.out;
        int rc;
        try {
            System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
            rc = AnvilMain.run("bench-attention", "--batch-size", "1", "--seq-len", "40", "--heads", "2",
                    "--head-size", "16", "--repeats", "2");
        } finally {
            System.setOut(saved);
        }
        String out = buffer.toString(StandardCharsets.UTF_8);
        assertEquals(0, rc, out);
        assertTrue(out.lines().anyMatch(l -> l.startsWith("forward+backward ") && l.endsWith("TFLOPS")), out);
    }
}
