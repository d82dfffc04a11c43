package dev.anvil.engine.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.anvil.kernels.BFloat16;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {

    @TempDir
    Path dir;

    private static SafeTensors.TensorData tensor(String name, TensorDtype dtype, float[] values, long... shape) {
        return new SafeTensors.TensorData(name, dtype, shape, () -> FloatBuffer.wrap(values));
    }

    /** A file of an 8-byte length, then {@code header} as the header, then {@code dataBytes} zero bytes. */
    private Path rawFile(String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        Path file = dir.resolve("raw.safetensors");
        Files.write(file, b.array());
        return file;
    }

    private static ModelFormatException refused(Path file) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> SafeTensors.open(file).close());
        assertTrue(e.getMessage().startsWith(file.toString()), "names the file: " + e.getMessage());
        return e;
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }

    @Test
    void roundTripsF32BitExactlyIncludingSpecialValues() throws IOException {
        float[] values = {0f, -0f, 1.5f, Float.MIN_VALUE, Float.MAX_VALUE, Float.NEGATIVE_INFINITY,
            Float.intBitsToFloat(0x7fc00123)};
        Path file = dir.resolve("a.safetensors");
        SafeTensors.write(file, Map.of(), List.of(tensor("x", TensorDtype.F32, values, 7)));
        try (SafeTensors st = SafeTensors.open(file)) {
            float[] back = st.read("x");
            for (int i = 0; i < values.length; i++) {
                assertEquals(Float.floatToRawIntBits(values[i]), Float.floatToRawIntBits(back[i]), "element " + i);
            }
            assertArrayEquals(new long[] {7}, st.tensors().get("x").shape());
        }
    }

    @Test
    void storesBf16AndF16AndReadsThemBackAsFloat32() throws IOException {
        float[] values = {1f, -2.5f, 3.14159f, 1e-3f, 65504f, -0f};
        Path file = dir.resolve("half.safetensors");
        SafeTensors.write(file, Map.of(), List.of(
                tensor("b", TensorDtype.BF16, values, 2, 3),
                tensor("h", TensorDtype.F16, values, 3, 2)));
        try (SafeTensors st = SafeTensors.open(file)) {
            assertEquals(12, st.bytes("b").byteSize());
            float[] b = st.read("b");
            float[] h = st.read("h");
            for (int i = 0; i < values.length; i++) {
                assertEquals(BFloat16.round(values[i]), b[i], "bf16 element " + i);
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(values[i])), h[i], "f16 element " + i);
            }
        }
    }

    @Test
    void writesAPaddedHeaderAndOrdersTensorsByElementSizeThenName() throws IOException {
        Path file = dir.resolve("order.safetensors");
        SafeTensors.write(file, Map.of("format", "pt"), List.of(
                tensor("b.half", TensorDtype.BF16, new float[3], 3),
                tensor("z", TensorDtype.F32, new float[1], 1),
                tensor("a.half", TensorDtype.BF16, new float[1], 1),
                tensor("m", TensorDtype.F32, new float[2], 2)));
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8, "header length is a multiple of 8");
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"}"), header);
        String padding = header.substring(header.stripTrailing().length());
        assertTrue(header.stripTrailing().endsWith("}") && padding.chars().allMatch(c -> c == ' '),
                "padded with spaces only: '" + header + "'");

        JsonNode json = new ObjectMapper().readTree(header);
        Iterator<String> names = json.fieldNames();
        names.next();
        assertEquals(List.of("m", "z", "a.half", "b.half"), List.of(names.next(), names.next(), names.next(), names.next()));
        assertEquals("[0,8]", json.get("m").get("data_offsets").toString());
        assertEquals("[8,12]", json.get("z").get("data_offsets").toString());
        assertEquals("[12,14]", json.get("a.half").get("data_offsets").toString());
        assertEquals("[14,20]", json.get("b.half").get("data_offsets").toString());
        assertEquals(8 + n + 20, bytes.length);
        try (SafeTensors st = SafeTensors.open(file)) {
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertEquals(List.of("m", "z", "a.half", "b.half"), List.copyOf(st.tensors().keySet()));
        }
    }

    @Test
    void writingTheSameTensorsTwiceGivesTheSameBytes() throws IOException {
        float[] v = {1f, 2f};
        Path a = dir.resolve("a.safetensors");
        Path b = dir.resolve("b.safetensors");
        SafeTensors.write(a, Map.of("k", "v"), List.of(tensor("x", TensorDtype.F32, v, 2), tensor("y", TensorDtype.F32, v, 2)));
        SafeTensors.write(b, Map.of("k", "v"), List.of(tensor("y", TensorDtype.F32, v, 2), tensor("x", TensorDtype.F32, v, 2)));
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    }

    @Test
    void aFailedWriteLeavesTheExistingFileIntact() throws IOException {
        Path file = dir.resolve("model.safetensors");
        SafeTensors.write(file, Map.of(), List.of(tensor("x", TensorDtype.F32, new float[] {1f}, 1)));
        byte[] before = Files.readAllBytes(file);
        SafeTensors.TensorData failing = new SafeTensors.TensorData("y", TensorDtype.F32, new long[] {1}, () -> {
            throw new IllegalStateException("simulated failure mid-write");
        });
        assertThrows(IllegalStateException.class, () -> SafeTensors.write(file, Map.of(),
                List.of(tensor("x", TensorDtype.F32, new float[] {2f}, 1), failing)));
        assertArrayEquals(before, Files.readAllBytes(file));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList(), "no temporary file left behind");
        }
    }

    @Test
    void refusesValuesThatDoNotMatchTheShape() {
        Path file = dir.resolve("x.safetensors");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(file,
                Map.of(), List.of(tensor("x", TensorDtype.F32, new float[3], 2, 2))));
        assertMentions(e, "'x'", "[2, 2]", "3 values");
        assertTrue(Files.notExists(file));
    }

    @Test
    void reportsAFileShorterThanTheLengthFieldAsTruncated() throws IOException {
        Path file = dir.resolve("short.safetensors");
        Files.write(file, new byte[] {5, 0, 0});
        assertMentions(refused(file), "truncated");
    }

    @Test
    void reportsAHeaderLengthBeyondTheFileAsTruncated() throws IOException {
        Path file = dir.resolve("beyond.safetensors");
        Files.write(file, ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).array());
        assertMentions(refused(file), "truncated", "1000", "12 follow");
    }

    @Test
    void refusesAnAbsurdHeaderLength() throws IOException {
        Path file = dir.resolve("huge.safetensors");
        Files.write(file, ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).array());
        assertMentions(refused(file), "header length 18446744073709551615 exceeds the limit");
    }

    @Test
    void reportsTruncatedDataNamingTheTensor() throws IOException {
        Path file = rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12);
        assertMentions(refused(file), "truncated", "'b'", "only 12 bytes");
    }

    @Test
    void refusesMalformedHeaderJson() throws IOException {
        assertMentions(refused(rawFile("{\"a\": {\"dtype\": ", 0)), "malformed header JSON");
        assertMentions(refused(rawFile("[1, 2]", 0)), "not a JSON object");
        assertMentions(refused(rawFile("{} trailing", 0)), "malformed header JSON");
    }

    @Test
    void refusesATensorNamedTwice() throws IOException {
        String entry = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
        assertMentions(refused(rawFile("{\"a\":" + entry + ",\"a\":" + entry + "}", 4)), "malformed", "'a'");
    }

    @Test
    void refusesUnknownDtypesNamingTheTensor() throws IOException {
        assertMentions(refused(rawFile("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8)),
                "tensor 'w'", "unsupported dtype I64");
    }

    @Test
    void refusesNegativeOrFractionalDimensions() throws IOException {
        assertMentions(refused(rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0)),
                "tensor 'w'", "shape");
        assertMentions(refused(rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,6]}}", 8)),
                "tensor 'w'", "shape");
    }

    @Test
    void refusesDataOffsetsThatDisagreeWithTheShape() throws IOException {
        assertMentions(refused(rawFile("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24)),
                "tensor 'w'", "[0, 24]", "needs 12 bytes");
        assertMentions(refused(rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8)),
                "tensor 'w'");
        assertMentions(refused(rawFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8)),
                "tensor 'w'", "data_offsets");
    }

    @Test
    void refusesOverlappingTensors() throws IOException {
        Path file = rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertMentions(refused(file), "'b'", "overlaps", "'a'");
    }

    @Test
    void refusesMetadataThatIsNotStrings() throws IOException {
        assertMentions(refused(rawFile("{\"__metadata__\":{\"format\":1}}", 0)), "__metadata__", "'format'");
    }

    @Test
    void acceptsEmptyTensorsAnywhere() throws IOException {
        Path file = rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[4,4]}}", 8);
        try (SafeTensors st = SafeTensors.open(file)) {
            assertEquals(0, st.read("e").length);
            assertEquals(2, st.read("a").length);
            assertEquals("[0, 4]", Arrays.toString(st.tensors().get("e").shape()));
        }
    }
}
