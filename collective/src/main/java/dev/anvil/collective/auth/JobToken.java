package dev.anvil.collective.auth;

import dev.anvil.collective.CollectiveException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Map;

/**
 * The job's shared secret. Every rank presents it at rendezvous and on every ring connection, so a process outside
 * the job can neither join nor inject gradients. Without TLS it travels in clear text: enable TLS on untrusted
 * networks.
 */
public final class JobToken {
    /** Environment variable holding the token itself. */
    public static final String ENV_TOKEN = "ANVIL_JOB_TOKEN";
    /** Environment variable naming a file whose (trimmed) content is the token. */
    public static final String ENV_TOKEN_FILE = "ANVIL_JOB_TOKEN_FILE";

    private final byte[] secret;

    private JobToken(byte[] secret) {
        if (secret.length == 0) {
            throw new CollectiveException("the job token is empty; set " + ENV_TOKEN
                    + " to the same secret on every rank, e.g. the output of `openssl rand -hex 32`");
        }
        this.secret = secret;
    }

    /** A token from its text form. */
    public static JobToken of(String secret) {
        return new JobToken(secret.getBytes(StandardCharsets.UTF_8));
    }

    /** A fresh random token, for jobs whose ranks all live in one process (tests, benchmarks). */
    public static JobToken random() {
        byte[] bytes = new byte[32];
        new SecureRandom().nextBytes(bytes);
        return of(HexFormat.of().formatHex(bytes));
    }

    /**
     * The token from {@value #ENV_TOKEN}, or else from the file named by {@value #ENV_TOKEN_FILE}.
     *
     * @param env the environment, e.g. {@code System.getenv()}
     */
    public static JobToken fromEnvironment(Map<String, String> env) {
        String value = env.get(ENV_TOKEN);
        if (value != null && !value.isBlank()) {
            return of(value.strip());
        }
        String file = env.get(ENV_TOKEN_FILE);
        if (file != null && !file.isBlank()) {
            try {
                return of(Files.readString(Path.of(file.strip())).strip());
            } catch (IOException e) {
                throw new CollectiveException("cannot read the job token from " + ENV_TOKEN_FILE + "=" + file
                        + ": " + e.getMessage(), e);
            }
        }
        throw new CollectiveException("no job token: set " + ENV_TOKEN + " (or " + ENV_TOKEN_FILE
                + " to a file holding it) to the same secret on every rank, e.g. `openssl rand -hex 32`");
    }

    /** The raw secret, to put on the wire. */
    public byte[] bytes() {
        return secret.clone();
    }

    /** Whether {@code candidate} is this token, in time independent of where they differ. */
    public boolean matches(byte[] candidate) {
        // Comparing fixed-size digests also hides the secret's length.
        return MessageDigest.isEqual(sha256(secret), sha256(candidate));
    }

    private static byte[] sha256(byte[] bytes) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    @Override
    public String toString() {
        return "JobToken[redacted]";
    }
}
