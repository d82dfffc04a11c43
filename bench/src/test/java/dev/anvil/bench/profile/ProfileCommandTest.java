package dev.anvil.bench.profile;

import dev.anvil.engine.cli.AnvilMain;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bench-profile on the CPU with the tiny model: every op class the model runs shows up with a time. */
class ProfileCommandTest {

    @Test
    void tinyStepSplitsIntoOpClassesWithTheirRooflines() {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream saved = System.out;
        int rc;
        try {
            System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
            rc = AnvilMain.run("bench-profile", "--preset", "tiny", "--batch-size", "2", "--seq-len", "32",
                    "--warmup", "1", "--peak-tflops", "1", "--bandwidth-gbps", "10");
        } finally {
            System.setOut(saved);
        }
        String out = buffer.toString(StandardCharsets.UTF_8);
        assertEquals(0, rc, out);
        for (String op : new String[] {"matmul forward", "matmul backward", "matmul+gelu forward", "matmul+gelu backward",
                "attention forward", "attention backward", "layernorm forward", "layernorm backward",
                "residual+layernorm forward", "lm head+cross-entropy", "encoder forward", "encoder backward", "adamw",
                "gradient norm", "(idle between ops)", "step"}) {
            assertTrue(out.lines().anyMatch(l -> l.startsWith(op + " ")), "no line for " + op + " in\n" + out);
        }
        assertTrue(out.contains("roofline 1 TFLOPS, 10 GB/s"), out);
        assertTrue(out.lines().anyMatch(l -> l.startsWith("tokens/s from this step: ")), out);
    }
}
