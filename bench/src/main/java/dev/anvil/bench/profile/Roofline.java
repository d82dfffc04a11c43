package dev.anvil.bench.profile;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Measured time per op class against its roofline: the larger of FLOPs over the peak rate and
 * bytes over the memory bandwidth is the least time the work could take; measured over that floor
 * is how far the op is from its hardware limit.
 *
 * @param peakTflops      the device's dense peak for the training dtype (tensor cores for bf16)
 * @param bandwidthGbps   its memory bandwidth in GB/s (1e9 bytes)
 */
record Roofline(double peakTflops, double bandwidthGbps) {

    Roofline {
        if (!(peakTflops > 0) || !(bandwidthGbps > 0)) {
            throw new IllegalArgumentException("peak TFLOPS and bandwidth must be positive, got " + peakTflops + " and "
                    + bandwidthGbps);
        }
    }

    /** The least milliseconds {@code cost} can take: max(FLOPs / peak, bytes / bandwidth). */
    double floorMillis(OpCost cost) {
        return Math.max(cost.flops() / (peakTflops * 1e12), cost.bytes() / (bandwidthGbps * 1e9)) * 1e3;
    }

    /** Whether the floor is set by arithmetic (else by memory). */
    boolean computeBound(OpCost cost) {
        return cost.flops() / (peakTflops * 1e12) >= cost.bytes() / (bandwidthGbps * 1e9);
    }

    /** What one op class took in a profiled step. */
    record Row(String op, int calls, double millis, OpCost cost) {
    }

    /**
     * The table: one line per op class, most time first, then the idle time between ops and the
     * totals; each line gives calls, ms, share of the step, achieved TFLOPS and GB/s, the floor, and
     * measured over floor.
     */
    List<String> table(Map<String, Row> rows, double idleMillis) {
        List<Row> sorted = new ArrayList<>(rows.values());
        sorted.sort((a, b) -> Double.compare(b.millis(), a.millis()));
        double total = idleMillis + sorted.stream().mapToDouble(Row::millis).sum();
        double floors = sorted.stream().mapToDouble(r -> floorMillis(r.cost())).sum();
        List<String> lines = new ArrayList<>();
        lines.add(String.format(Locale.ROOT, "%-26s %6s %10s %6s %8s %8s %10s %7s %s", "op", "calls", "ms", "%",
                "TFLOPS", "GB/s", "floor ms", "x floor", "bound"));
        for (Row r : sorted) {
            double floor = floorMillis(r.cost());
            double seconds = r.millis() / 1e3;
            lines.add(String.format(Locale.ROOT, "%-26s %6d %10.3f %5.1f%% %8.1f %8.0f %10.3f %7.1f %s", r.op(),
                    r.calls(), r.millis(), 100 * r.millis() / total, seconds > 0 ? r.cost().flops() / seconds / 1e12 : 0,
                    seconds > 0 ? r.cost().bytes() / seconds / 1e9 : 0, floor,
                    floor > 0 ? r.millis() / floor : 0, computeBound(r.cost()) ? "compute" : "memory"));
        }
        lines.add(String.format(Locale.ROOT, "%-26s %6s %10.3f %5.1f%%", "(idle between ops)", "", idleMillis,
                100 * idleMillis / total));
        lines.add(String.format(Locale.ROOT, "%-26s %6s %10.3f %6s %8s %8s %10.3f %7.1f", "step", "", total, "", "",
                "", floors, floors > 0 ? total / floors : 0));
        return lines;
    }
}
