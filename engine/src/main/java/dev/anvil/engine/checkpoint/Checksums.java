package dev.anvil.engine.checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * SHA-256 of files, and the {@code checksums.sha256} list of a checkpoint (in {@code sha256sum}'s
 * format, so {@code sha256sum -c checksums.sha256} checks it too).
 */
public final class Checksums {

    /** Name of the list inside a checkpoint directory. */
    public static final String FILE = "checksums.sha256";

    private Checksums() {
    }

    /** Hex SHA-256 of a file's bytes. */
    public static String sha256(Path file) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks SHA-256", e);
        }
        byte[] buf = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(file)) {
            for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
                digest.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    /** The list's text for {@code files} in {@code dir}. */
    static String list(Path dir, List<String> files) throws IOException {
        StringBuilder text = new StringBuilder();
        for (String name : files) {
            text.append(sha256(dir.resolve(name))).append("  ").append(name).append('\n');
        }
        return text.toString();
    }

    /**
     * Checks every file of {@code dir}'s list.
     *
     * @return {@code null} when all match, else what is wrong
     */
    static String verify(Path dir) throws IOException {
        Path list = dir.resolve(FILE);
        if (!Files.isRegularFile(list)) {
            return "no " + FILE + " (the checkpoint was not completed)";
        }
        Map<String, String> expected = new LinkedHashMap<>();
        for (String line : Files.readAllLines(list, StandardCharsets.UTF_8)) {
            int sep = line.indexOf("  ");
            if (sep != 64) {
                return FILE + " is malformed";
            }
            expected.put(line.substring(sep + 2), line.substring(0, sep));
        }
        for (var e : expected.entrySet()) {
            Path file = dir.resolve(e.getKey());
            if (!Files.isRegularFile(file)) {
                return e.getKey() + " is missing";
            }
            if (!sha256(file).equals(e.getValue())) {
                return e.getKey() + " does not match its checksum (corrupt or truncated)";
            }
        }
        return null;
    }
}
