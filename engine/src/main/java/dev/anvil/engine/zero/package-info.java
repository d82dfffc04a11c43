/**
 * ZeRO stage 1 (as in DeepSpeed and PyTorch's {@code ZeroRedundancyOptimizer}): the optimizer's
 * fp32 state is sharded across the data-parallel ranks. Gradients are reduce-scattered in the
 * buckets {@link dev.anvil.engine.parallel.GradientSync} would all-reduce, each rank updates the
 * shard of every bucket it receives, and the updated parameters are all-gathered: the same bytes on
 * the wire as an all-reduce, and a 1/R share of the moments and master weights on each rank.
 */
package dev.anvil.engine.zero;
