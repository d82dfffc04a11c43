package dev.anvil.engine.optim;

import java.util.ArrayList;
import java.util.List;

/**
 * The elements of the parameter buffer an optimizer updates: runs in buffer order that do not
 * overlap. The optimizer's own state (moments, sharded master weights) packs the runs one after
 * another, so element {@code i} of run {@code k} sits at {@code run(k).local() + i} there. The
 * whole buffer is one run; a ZeRO rank owns a run per gradient bucket.
 *
 * @param runs the runs, ascending and disjoint, none empty
 */
public record ParameterShard(List<Run> runs) {

    /**
     * Elements {@code [offset, offset + length)} of the parameter buffer, stored from {@code local}
     * on in the optimizer's state.
     */
    public record Run(long offset, long length, long local) {

        /** One past the last element, in the parameter buffer. */
        public long end() {
            return offset + length;
        }
    }

    public ParameterShard {
        runs = List.copyOf(runs);
        long local = 0;
        long end = 0;
        for (Run r : runs) {
            if (r.length() <= 0 || r.offset() < end || r.local() != local) {
                throw new IllegalArgumentException("runs must be non-empty, ascending, disjoint and packed: " + runs);
            }
            end = r.end();
            local += r.length();
        }
    }

    /** The whole buffer of {@code elements}, as one run. */
    public static ParameterShard whole(long elements) {
        return of(List.of(new long[] {0, elements}));
    }

    /** The shard of the ascending, disjoint {@code {offset, length}} ranges given; empty ones are dropped. */
    public static ParameterShard of(List<long[]> ranges) {
        List<Run> runs = new ArrayList<>();
        long local = 0;
        for (long[] r : ranges) {
            if (r[1] > 0) {
                runs.add(new Run(r[0], r[1], local));
                local += r[1];
            }
        }
        return new ParameterShard(runs);
    }

    /** The owned elements of {@code whole} (laid out like the parameter buffer), packed. */
    public float[] gather(float[] whole) {
        float[] packed = new float[Math.toIntExact(size())];
        for (Run r : runs) {
            System.arraycopy(whole, Math.toIntExact(r.offset()), packed, (int) r.local(), (int) r.length());
        }
        return packed;
    }

    /** Number of elements owned: the length of the optimizer's state buffers. */
    public long size() {
        return runs.isEmpty() ? 0 : runs.getLast().local() + runs.getLast().length();
    }
}
