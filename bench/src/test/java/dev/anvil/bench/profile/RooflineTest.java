package dev.anvil.bench.profile;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The roofline arithmetic of bench-profile, on the H100's numbers: what a GPU profile will be judged by. */
class RooflineTest {

    private static final Roofline H100 = new Roofline(989, 3350);

    @Test
    void aLargeGemmIsComputeBoundAndItsFloorIsItsFlopsAtPeak() {
        // gpt-1.3b's MLP up-projection at B·T = 16384 in bf16: 2·16384·2048·8192 FLOPs
        OpCost fc = OpCost.matmulForward(16384, 2048, 8192, 2, true);
        assertEquals(2.0 * 16384 * 2048 * 8192, fc.flops());
        assertEquals(2.0 * (16384.0 * 2048 + 8192.0 * 2048 + 16384.0 * 8192 + 8192), fc.bytes());
        assertTrue(H100.computeBound(fc));
        assertEquals(fc.flops() / 989e12 * 1e3, H100.floorMillis(fc), 1e-12);
    }

    @Test
    void elementwiseOpsAreMemoryBoundAndTheirFloorIsTheirBytesAtBandwidth() {
        OpCost gelu = OpCost.elementwise(134_217_728, 10, 2, 2);  // 16384 × 8192 bf16 in and out
        assertFalse(H100.computeBound(gelu));
        assertEquals(134_217_728.0 * 4 / 3350e9 * 1e3, H100.floorMillis(gelu), 1e-12);
    }

    @Test
    void causalAttentionCountsTheLowerTriangleAndItsBackwardTwoAndAHalfTimes() {
        OpCost fwd = OpCost.attentionForward(8, 2048, 2048, 16, 2), bwd = OpCost.attentionBackward(8, 2048, 2048, 16, 2);
        assertEquals(4.0 * 8 * 2048 * 2048 * 2048 / 2, fwd.flops());
        assertEquals(2.5 * fwd.flops(), bwd.flops());
    }

    @Test
    void overwritingGradientsReadsNoOldValuesAndBackwardWithoutDinpHalvesTheFlops() {
        OpCost acc = OpCost.matmulBackward(10, 20, 30, 4, true, true), over = OpCost.matmulBackward(10, 20, 30, 4, true, false);
        assertEquals(4.0 * (30 * 20 + 30), acc.bytes() - over.bytes());
        assertEquals(OpCost.matmulBackward(10, 20, 30, 4, true, true).flops() / 2,
                OpCost.matmulBackward(10, 20, 30, 4, false, true).flops());
    }

    @Test
    void theTableSortsByTimeAndSumsTheStepWithTheIdleTime() {
        Map<String, Roofline.Row> rows = new LinkedHashMap<>();
        rows.put("gelu", new Roofline.Row("gelu", 24, 2.0, OpCost.elementwise(134_217_728, 10, 2, 2)));
        rows.put("matmul forward", new Roofline.Row("matmul forward", 72, 30.0,
                OpCost.matmulForward(16384, 2048, 8192, 2, true)));
        List<String> table = H100.table(rows, 1.0);
        assertTrue(table.get(1).startsWith("matmul forward"), table.get(1));
        assertTrue(table.get(2).startsWith("gelu"), table.get(2));
        assertTrue(table.get(3).startsWith("(idle between ops)"), table.get(3));
        assertTrue(table.get(4).startsWith("step") && table.get(4).contains("33.000"), table.get(4));
        assertTrue(table.get(1).endsWith("compute") && table.get(2).endsWith("memory"), table.toString());
    }
}
