package dev.anvil.bench.compare;

import dev.anvil.bench.harness.BenchResult;
import dev.anvil.bench.harness.Stats;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ComparisonTableTest {

    @Test
    void ratiosAreAgainstTheFirstResult() {
        List<List<String>> rows = ComparisonTable.of(List.of("a.json", "b.json"),
                List.of(result(1000, 0.10), result(2500, null)));
        assertEquals(List.of("", "a.json", "b.json"), rows.getFirst());
        assertEquals(List.of("tokens/s median", "1,000", "2,500 (2.50x)"), row(rows, "tokens/s median"));
        assertEquals(List.of("MFU %", "10.00", "n/a"), row(rows, "MFU %"));
    }

    @Test
    void aZeroBaselineGetsNoRatio() {
        assertEquals("0.00", ComparisonTable.cell("%.2f", 0.0, null));
        assertEquals("1.00", ComparisonTable.cell("%.2f", 1.0, 0.0));
        assertEquals("3.00 (1.50x)", ComparisonTable.cell("%.2f", 3.0, 2.0));
    }

    private static List<String> row(List<List<String>> rows, String name) {
        return rows.stream().filter(r -> r.getFirst().equals(name)).findFirst().orElseThrow();
    }

    private static BenchResult result(double tokensPerS, Double mfu) {
        return new BenchResult("dev", "t", "tiny", "m", 10, "cpu", "fp32", 2, 4, 64, 1, 3, 1, 256,
                new Stats(tokensPerS, tokensPerS, tokensPerS), new Stats(1, 1, 1),
                Map.of("data", 0.0, "forward", 1.0, "backward", 2.0, "communication", 0.0, "optimizer", 0.5),
                100, 0.1, mfu == null ? null : 1.0, "x", mfu, 1 << 20, 0, null, null, null, 6.0, 0, null);
    }
}
