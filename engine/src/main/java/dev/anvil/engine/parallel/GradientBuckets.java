package dev.anvil.engine.parallel;

import dev.anvil.engine.model.ParameterLayout;

import java.util.ArrayList;
import java.util.List;

/**
 * The buckets {@link GradientSync} reduces: contiguous slices of the gradient buffer, in the order
 * the backward pass finishes them (from the end of the buffer to its start). The backward pass
 * finishes {@code ln_f}, then each block from the last, then the embeddings (see
 * {@link dev.anvil.engine.model.GptModel#backward}); a bucket closes once it holds at least the
 * bucket size or reaches the start of the buffer. A sharded sync that reduces these same buckets
 * sums every element in the same order as the all-reduce does, so its results are the same bits.
 */
public final class GradientBuckets {

    /** Elements {@code [offset, offset + length)} of the gradient buffer. */
    public record Bucket(long offset, long length) {
    }

    private GradientBuckets() {
    }

    /**
     * The buckets of a model of {@code layout} whose gradients take {@code elementBytes} each, in
     * the order they are finished.
     *
     * @param bucketBytes gradient bytes per bucket, at least one element's
     */
    public static List<Bucket> of(ParameterLayout layout, long bucketBytes, int elementBytes) {
        if (bucketBytes < elementBytes) {
            throw new IllegalArgumentException("bucket size must be at least one element, got " + bucketBytes + " bytes");
        }
        long bucketElements = bucketBytes / elementBytes;
        int layers = layout.config().numLayers();
        List<Bucket> buckets = new ArrayList<>();
        long end = layout.totalSize();
        for (int l = layers; l >= -1; l--) {
            long start = l >= 0 ? layout.blockStart(l) : 0; // ln_f, the blocks from the last, the embeddings
            if (end - start >= bucketElements || start == 0) {
                if (end > start) {
                    buckets.add(new Bucket(start, end - start));
                }
                end = start;
            }
        }
        return List.copyOf(buckets);
    }
}
