package dev.anvil.bench.harness;

import dev.anvil.engine.train.RankMemory;

import java.util.Map;

/**
 * What one {@code anvil bench-train} run measured: the JSON file it writes (snake_case keys) and
 * one CSV row. Times are over the measured steps, after the warmup steps.
 *
 * @param anvilVersion         Anvil's version
 * @param timestamp            when the run finished, ISO-8601 UTC
 * @param preset               model preset name
 * @param model                the model's shape
 * @param parameters           parameter count (padded vocabulary rows included)
 * @param backend              the backend's description
 * @param dtype                fp32 or bf16
 * @param threads              CPU threads, or {@code null} on a GPU
 * @param batchSize            sequences per step and rank, {@code B}
 * @param seqLen               tokens per sequence, {@code T}
 * @param worldSize            data-parallel ranks, {@code R}
 * @param steps                measured steps
 * @param warmup               unmeasured steps before them
 * @param tokensPerStep        {@code B·T·R}
 * @param tokensPerS           tokens per second over the measured steps
 * @param stepMs               step wall time in milliseconds
 * @param phaseMs              mean milliseconds per step in each {@link Phase}, by {@link Phase#label()}
 * @param flopsPerToken        training FLOPs per token, see {@link Flops}
 * @param achievedTflops       FLOPs per token times the median tokens/s, in TFLOPS
 * @param peakTflops           peak of one device MFU is against, or {@code null} when unknown
 * @param peakSource           where {@code peakTflops} comes from
 * @param mfu                  model FLOPs utilisation at the median tokens/s (0..1), or {@code null}
 * @param heapPeakBytes        peak JVM heap, see {@link MemoryProbe}
 * @param offHeapPeakBytes     peak direct and mapped buffer memory
 * @param devicePeakBytes      peak device memory, or {@code null} when the backend cannot tell
 * @param pricePerGpuHour      dollars per device-hour, or {@code null} when not given
 * @param costPerMillionTokens dollars per million tokens at the median tokens/s, or {@code null}
 * @param finalLoss            loss of the last step (random tokens: about ln V)
 * @param zero                 ZeRO stage: 0, or 1 when the optimizer state is sharded across the ranks
 * @param memoryPerRank        what one rank holds for training, by part; {@code null} in older files
 */
public record BenchResult(String anvilVersion, String timestamp, String preset, String model, long parameters,
                          String backend, String dtype, Integer threads, int batchSize, int seqLen, int worldSize,
                          int steps, int warmup, long tokensPerStep, Stats tokensPerS, Stats stepMs,
                          Map<String, Double> phaseMs, long flopsPerToken, double achievedTflops, Double peakTflops,
                          String peakSource, Double mfu, long heapPeakBytes, long offHeapPeakBytes,
                          Long devicePeakBytes, Double pricePerGpuHour, Double costPerMillionTokens,
                          double finalLoss, int zero, RankMemory memoryPerRank) {
}
