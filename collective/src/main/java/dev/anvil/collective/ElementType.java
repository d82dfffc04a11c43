package dev.anvil.collective;

/** Element type of a buffer handed to a collective. Buffers are little-endian. */
public enum ElementType {
    /** IEEE 754 binary32. */
    FLOAT32(4),
    /** bfloat16: the upper half of a binary32; reduced by widening to fp32 and rounding to nearest even. */
    BFLOAT16(2);

    private final int byteSize;

    ElementType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }
}
