package dev.anvil.kernels;

/** Element types a {@link Buffer} can hold. */
public enum DType {
    /** IEEE 754 binary32. */
    FP32(4),
    /** bfloat16: the upper half of an fp32, used for GPU activations and weights. */
    BF16(2),
    /** 32-bit signed integers, used for token ids and targets. */
    INT32(4);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }
}
