package dev.anvil.engine.checkpoint;

import java.io.IOException;
import java.nio.file.Path;

/** A checkpoint that cannot be used: incomplete, corrupt, or for another model. */
public final class CheckpointException extends IOException {

    public CheckpointException(Path dir, String detail) {
        super(dir + ": " + detail);
    }
}
