package dev.anvil.bench.harness;

/** What training costs at a measured throughput. */
public final class Cost {

    private Cost() {
    }

    /**
     * Dollars per million tokens: {@code pricePerGpuHour · gpus / (tokensPerS · 3600) · 1e6}.
     *
     * @param pricePerGpuHour dollars per device-hour (per node-hour with {@code gpus = 1} for a node price)
     * @param gpus            devices paid for
     * @param tokensPerS      tokens per second of all of them together
     */
    public static double perMillionTokens(double pricePerGpuHour, int gpus, double tokensPerS) {
        if (pricePerGpuHour < 0 || gpus <= 0 || tokensPerS <= 0) {
            throw new IllegalArgumentException("need a price >= 0, gpus > 0 and tokens/s > 0, got " + pricePerGpuHour
                    + ", " + gpus + ", " + tokensPerS);
        }
        return pricePerGpuHour * gpus / (tokensPerS * 3600) * 1e6;
    }
}
