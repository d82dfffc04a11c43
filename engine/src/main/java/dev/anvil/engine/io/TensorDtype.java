package dev.anvil.engine.io;

import java.util.Optional;

/** Element types of stored tensors, by their safetensors names. */
public enum TensorDtype {
    /** IEEE 754 binary32. */
    F32(4),
    /** IEEE 754 binary16. */
    F16(2),
    /** bfloat16, the upper half of a binary32. */
    BF16(2);

    private final int bytes;

    TensorDtype(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** The type whose safetensors name is {@code name}, if any. */
    public static Optional<TensorDtype> ofName(String name) {
        for (TensorDtype d : values()) {
            if (d.name().equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }
}
