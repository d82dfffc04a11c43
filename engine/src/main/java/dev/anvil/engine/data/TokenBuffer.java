package dev.anvil.engine.data;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/** Collects tokens on the heap in shard byte order (little-endian uint16), for in-memory token sources. */
final class TokenBuffer implements TokenStreamer.Sink {

    /** Largest heap array, in bytes; also what bounds an in-memory source (about a billion tokens). */
    private static final int MAX_BYTES = Integer.MAX_VALUE - 8;

    private byte[] bytes = new byte[1 << 16];
    private int size;

    @Override
    public void accept(int[] tokens) {
        int needed = size + 2 * tokens.length;
        if (needed < 0 || needed > MAX_BYTES) {
            throw new IllegalStateException("more than " + MAX_BYTES / 2 + " tokens do not fit in memory; "
                    + "prepare the text into shards with 'anvil prepare' and train on those");
        }
        if (needed > bytes.length) {
            bytes = Arrays.copyOf(bytes, (int) Math.min(MAX_BYTES, Math.max(needed, 2L * bytes.length)));
        }
        for (int token : tokens) {
            if (token < 0 || token > TokenShard.MAX_TOKEN) {
                throw new IllegalArgumentException("token " + token + " does not fit in uint16");
            }
            bytes[size++] = (byte) token;
            bytes[size++] = (byte) (token >>> 8);
        }
    }

    /** The tokens collected, as a read-only segment over the buffer. */
    MemorySegment segment() {
        return MemorySegment.ofArray(bytes).asSlice(0, size).asReadOnly();
    }
}
