package dev.anvil.bench.harness;

import java.util.Arrays;

/**
 * Median, minimum and maximum of a sample.
 *
 * @param median the middle value (the mean of the two middle ones for an even count)
 * @param min    smallest value
 * @param max    largest value
 */
public record Stats(double median, double min, double max) {

    /** The statistics of {@code values}, which must not be empty. */
    public static Stats of(double[] values) {
        if (values.length == 0) {
            throw new IllegalArgumentException("no values to summarise");
        }
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int mid = sorted.length / 2;
        double median = sorted.length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        return new Stats(median, sorted[0], sorted[sorted.length - 1]);
    }
}
