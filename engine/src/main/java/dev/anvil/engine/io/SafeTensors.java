package dev.anvil.engine.io;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.anvil.kernels.BFloat16;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format:
 * an 8-byte little-endian header length {@code N}, {@code N} bytes of JSON header mapping each tensor
 * name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the data
 * section), with an optional {@code "__metadata__"} object of strings, then the little-endian data.
 *
 * <p>A reader maps the file rather than reading it onto the heap, and checks the whole header before
 * any data is touched: overlapping or out-of-bounds tensors are refused, while gaps between tensors
 * are tolerated. It may be read from several threads until {@link #close closed}.
 */
public final class SafeTensors implements AutoCloseable {

    /** Longest header accepted, as in the reference implementation; a larger one is corrupt. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final String METADATA_KEY = "__metadata__";
    private static final ValueLayout.OfLong LENGTH_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int WRITE_BUFFER_BYTES = 1 << 20;

    /**
     * A tensor stored in a file.
     *
     * @param name  its name in the header
     * @param dtype element type
     * @param shape dimensions, row-major
     * @param begin first byte, relative to the data section
     * @param end   byte after the last, relative to the data section
     */
    public record TensorInfo(String name, TensorDtype dtype, long[] shape, long begin, long end) {

        public TensorInfo {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        /** Number of elements. */
        public long numel() {
            return SafeTensors.numel(shape);
        }

        /** Size of the data in bytes. */
        public long byteSize() {
            return end - begin;
        }
    }

    /**
     * A tensor to write.
     *
     * @param name   its name in the header
     * @param dtype  the element type to store it as
     * @param shape  dimensions, row-major
     * @param values supplies the float32 values, {@code numel(shape)} of them from the buffer's
     *               position, only when the writer reaches this tensor: a converted or transposed copy
     *               then lives no longer than it takes to write it
     */
    public record TensorData(String name, TensorDtype dtype, long[] shape, Supplier<FloatBuffer> values) {

        public TensorData {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(dtype, "dtype");
            Objects.requireNonNull(values, "values");
            shape = shape.clone();
            for (long d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException("tensor '" + name + "' has a negative dimension in "
                            + Arrays.toString(shape));
                }
            }
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }
    }

    private final Path file;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafeTensors(Path file, Arena arena, MemorySegment data, Map<String, TensorInfo> tensors,
                        Map<String, String> metadata) {
        this.file = file;
        this.arena = arena;
        this.data = data;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Maps {@code file} and checks its header.
     *
     * @throws ModelFormatException if the file is truncated or its header is malformed or inconsistent
     */
    public static SafeTensors open(Path file) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < Long.BYTES) {
                throw new ModelFormatException(file, "truncated: " + size
                        + " bytes, too short for the 8-byte header length");
            }
            MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLength = mapped.get(LENGTH_LE, 0);
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw new ModelFormatException(file, "header length " + Long.toUnsignedString(headerLength)
                        + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes; not a safetensors file?");
            }
            if (headerLength > size - Long.BYTES) {
                throw new ModelFormatException(file, "truncated: the header length says " + headerLength
                        + " bytes but only " + (size - Long.BYTES) + " follow");
            }
            byte[] header = mapped.asSlice(Long.BYTES, headerLength).toArray(ValueLayout.JAVA_BYTE);
            MemorySegment data = mapped.asSlice(Long.BYTES + headerLength);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = parseHeader(file, header, data.byteSize(), metadata);
            return new SafeTensors(file, arena, data, tensors, Collections.unmodifiableMap(metadata));
        } catch (Throwable t) {
            arena.close();
            throw t;
        }
    }

    /** The file read. */
    public Path file() {
        return file;
    }

    /** The header's {@code __metadata__}, empty if it has none. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The tensors by name, in the order of their data. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /**
     * The raw little-endian bytes of tensor {@code name}, valid until this reader is closed.
     *
     * @throws IllegalArgumentException if there is no such tensor
     */
    public MemorySegment bytes(String name) {
        TensorInfo t = info(name);
        return data.asSlice(t.begin(), t.byteSize());
    }

    /**
     * Copies tensor {@code name}, converted to float32, into {@code dst} from {@code dstOffset}.
     *
     * @throws IllegalArgumentException  if there is no such tensor
     * @throws IndexOutOfBoundsException if it does not fit in {@code dst}
     */
    public void read(String name, float[] dst, int dstOffset) {
        TensorInfo t = info(name);
        long n = t.numel();
        Objects.checkFromIndexSize(dstOffset, n, dst.length);
        MemorySegment src = data.asSlice(t.begin(), t.byteSize());
        int count = (int) n;
        switch (t.dtype()) {
            case F32 -> MemorySegment.copy(src, F32_LE, 0, dst, dstOffset, count);
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = BFloat16.toFloat(src.getAtIndex(I16_LE, i));
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = Float.float16ToFloat(src.getAtIndex(I16_LE, i));
                }
            }
        }
    }

    /**
     * Tensor {@code name} converted to float32, in a new array.
     *
     * @throws IllegalArgumentException if there is no such tensor or it has 2^31 elements or more
     */
    public float[] read(String name) {
        long n = info(name).numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor '" + name + "' of " + n + " elements is too large for an array");
        }
        float[] values = new float[(int) n];
        read(name, values, 0);
        return values;
    }

    /** Unmaps the file; segments from {@link #bytes} become invalid. */
    @Override
    public void close() {
        arena.close();
    }

    private TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(file + ": no tensor '" + name + "'");
        }
        return t;
    }

    /**
     * Writes {@code tensors} to {@code file} atomically (see {@link AtomicFiles}). Like the reference
     * implementation, it orders tensors by element size, largest first (so every tensor stays aligned
     * to its element size), then by name, and pads the header with spaces to a multiple of 8 bytes;
     * the same input always gives the same bytes.
     *
     * @param metadata the header's {@code __metadata__}; left out when empty
     * @throws IllegalArgumentException if names repeat, a name is {@code __metadata__}, or a tensor's
     *                                  values do not match its shape
     */
    public static void write(Path file, Map<String, String> metadata, List<TensorData> tensors)
            throws IOException {
        List<TensorData> ordered = new ArrayList<>(tensors);
        ordered.sort(Comparator.comparingInt((TensorData t) -> -t.dtype().bytes()).thenComparing(TensorData::name));
        Map<String, Object> header = new LinkedHashMap<>();
        if (!metadata.isEmpty()) {
            header.put(METADATA_KEY, new LinkedHashMap<>(metadata));
        }
        long offset = 0;
        for (TensorData t : ordered) {
            if (t.name().equals(METADATA_KEY) || header.containsKey(t.name())) {
                throw new IllegalArgumentException("tensor name '" + t.name() + "' is reserved or repeated");
            }
            long end = Math.addExact(offset, Math.multiplyExact(numel(t.shape()), t.dtype().bytes()));
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("dtype", t.dtype().name());
            entry.put("shape", t.shape());
            entry.put("data_offsets", new long[] {offset, end});
            header.put(t.name(), entry);
            offset = end;
        }
        byte[] json = Json.MAPPER.writeValueAsBytes(header);
        int padded = (json.length + 7) & ~7;
        ByteBuffer head = ByteBuffer.allocate(Long.BYTES + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        AtomicFiles.write(file, channel -> {
            AtomicFiles.writeFully(channel, head.flip());
            ByteBuffer buffer = ByteBuffer.allocateDirect(WRITE_BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (TensorData t : ordered) {
                writeValues(channel, buffer, t);
            }
        });
    }

    private static void writeValues(FileChannel channel, ByteBuffer buffer, TensorData t) throws IOException {
        FloatBuffer values = t.values().get();
        long n = numel(t.shape());
        if (values.remaining() != n) {
            throw new IllegalArgumentException("tensor '" + t.name() + "' of shape " + Arrays.toString(t.shape())
                    + " was given " + values.remaining() + " values");
        }
        int perChunk = buffer.capacity() / t.dtype().bytes();
        while (values.hasRemaining()) {
            int count = Math.min(values.remaining(), perChunk);
            buffer.clear();
            switch (t.dtype()) {
                case F32 -> {
                    buffer.asFloatBuffer().put(values.slice(values.position(), count));
                    values.position(values.position() + count);
                    buffer.position(count * Float.BYTES);
                }
                case BF16 -> {
                    for (int i = 0; i < count; i++) {
                        buffer.putShort(BFloat16.fromFloat(values.get()));
                    }
                }
                case F16 -> {
                    for (int i = 0; i < count; i++) {
                        buffer.putShort(Float.floatToFloat16(values.get()));
                    }
                }
            }
            AtomicFiles.writeFully(channel, buffer.flip());
        }
    }

    private static Map<String, TensorInfo> parseHeader(Path file, byte[] header, long dataSize,
                                                       Map<String, String> metadata) throws IOException {
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(header);
        } catch (JacksonException e) {
            throw new ModelFormatException(file, "malformed header JSON at " + Json.describe(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelFormatException(file, "the header is not a JSON object: "
                    + abbreviate(new String(header, StandardCharsets.UTF_8)));
        }
        List<TensorInfo> list = new ArrayList<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            if (field.getKey().equals(METADATA_KEY)) {
                parseMetadata(file, field.getValue(), metadata);
            } else {
                list.add(parseTensor(file, field.getKey(), field.getValue()));
            }
        }
        list.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        for (TensorInfo t : list) {
            if (t.end() > dataSize) {
                throw new ModelFormatException(file, "truncated: tensor '" + t.name() + "' ends at byte " + t.end()
                        + " of the data section, which has only " + dataSize + " bytes");
            }
        }
        TensorInfo previous = null;
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo t : list) {
            // Empty tensors occupy no bytes and may sit anywhere.
            if (t.byteSize() > 0) {
                if (previous != null && t.begin() < previous.end()) {
                    throw new ModelFormatException(file, "tensor '" + t.name() + "' (bytes " + t.begin() + ".."
                            + t.end() + ") overlaps tensor '" + previous.name() + "' (bytes " + previous.begin()
                            + ".." + previous.end() + ")");
                }
                previous = t;
            }
            byName.put(t.name(), t);
        }
        return Collections.unmodifiableMap(byName);
    }

    private static void parseMetadata(Path file, JsonNode node, Map<String, String> metadata)
            throws ModelFormatException {
        if (!node.isObject()) {
            throw new ModelFormatException(file, METADATA_KEY + " is not a JSON object");
        }
        for (Map.Entry<String, JsonNode> entry : node.properties()) {
            if (!entry.getValue().isTextual()) {
                throw new ModelFormatException(file, METADATA_KEY + " entry '" + entry.getKey()
                        + "' is not a string");
            }
            metadata.put(entry.getKey(), entry.getValue().textValue());
        }
    }

    private static TensorInfo parseTensor(Path file, String name, JsonNode node) throws ModelFormatException {
        String where = "tensor '" + name + "'";
        if (!node.isObject()) {
            throw new ModelFormatException(file, where + " is not described by a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new ModelFormatException(file, where + " has no dtype string");
        }
        TensorDtype dtype = TensorDtype.ofName(dtypeNode.textValue()).orElseThrow(() -> new ModelFormatException(
                file, where + " has unsupported dtype " + dtypeNode.textValue() + "; supported: "
                + Arrays.toString(TensorDtype.values())));
        long[] shape = longArray(file, where, node, "shape", -1);
        long[] offsets = longArray(file, where, node, "data_offsets", 2);
        long begin = offsets[0];
        long end = offsets[1];
        long bytes;
        try {
            bytes = Math.multiplyExact(numel(shape), dtype.bytes());
        } catch (ArithmeticException e) {
            throw new ModelFormatException(file, where + " of shape " + Arrays.toString(shape) + " is too large");
        }
        if (end < begin || end - begin != bytes) {
            throw new ModelFormatException(file, where + " has data_offsets [" + begin + ", " + end + "] but its "
                    + dtype + " shape " + Arrays.toString(shape) + " needs " + bytes + " bytes");
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    /** Field {@code key} of {@code node} as non-negative integers; {@code length} -1 allows any count. */
    private static long[] longArray(Path file, String where, JsonNode node, String key, int length)
            throws ModelFormatException {
        JsonNode array = node.get(key);
        if (array == null || !array.isArray() || (length >= 0 && array.size() != length)) {
            throw new ModelFormatException(file, where + " has no " + key
                    + (length >= 0 ? " array of " + length + " integers" : " array"));
        }
        long[] values = new long[array.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = array.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new ModelFormatException(file, where + " has " + key + " " + array
                        + ": expected non-negative integers");
            }
            values[i] = v.longValue();
        }
        return values;
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 80) + "...";
    }
}
