package dev.anvil.engine.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A model file that is malformed, truncated or does not fit the model it is loaded into. The
 * message names the file and, where one is at fault, the tensor or field.
 */
public final class ModelFormatException extends IOException {

    private static final long serialVersionUID = 1L;

    private final transient Path file;

    /** A problem with {@code file}, described by {@code detail}. */
    public ModelFormatException(Path file, String detail) {
        this(file, detail, null);
    }

    /** A problem with {@code file}, described by {@code detail} and caused by {@code cause}. */
    public ModelFormatException(Path file, String detail, Throwable cause) {
        super(file + ": " + detail, cause);
        this.file = file;
    }

    /** The file at fault. */
    public Path file() {
        return file;
    }
}
