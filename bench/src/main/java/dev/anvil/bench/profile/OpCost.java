package dev.anvil.bench.profile;

/**
 * The work of one op call: floating-point operations and the fewest bytes it must move through
 * device memory (each input read once, each output written once, an accumulated output read and
 * written). The counts follow the ops' definitions, not any kernel's: they are what the roofline
 * compares the measured time with.
 *
 * @param flops floating-point operations (a multiply-add counts 2)
 * @param bytes bytes read plus bytes written
 */
record OpCost(double flops, double bytes) {

    static final OpCost NONE = new OpCost(0, 0);

    OpCost plus(OpCost o) {
        return new OpCost(flops + o.flops, bytes + o.bytes);
    }

    /** {@code out[n,oc] = inp[n,c]·W[oc,c]ᵀ (+ bias)}, elements of {@code e} bytes. */
    static OpCost matmulForward(long n, long c, long oc, int e, boolean bias) {
        return new OpCost(2.0 * n * c * oc, e * ((double) n * c + (double) oc * c + (double) n * oc + (bias ? oc : 0)));
    }

    /**
     * Its backward: {@code dinp += dout·W} (when asked), {@code dW (+)= doutᵀ·inp}, {@code db} from dout;
     * accumulated outputs are read and written.
     */
    static OpCost matmulBackward(long n, long c, long oc, int e, boolean dinp, boolean accumulate) {
        double flops = (dinp ? 4.0 : 2.0) * n * c * oc;
        double bytes = (double) n * oc + (double) n * c + (dinp ? (double) oc * c + 2.0 * n * c : 0)
                + (accumulate ? 2.0 : 1.0) * ((double) oc * c + oc);
        return new OpCost(flops, e * bytes);
    }

    /**
     * Causal attention forward: {@code Q·Kᵀ} and {@code P·V} over the lower triangle, {@code 2·B·T²·C}
     * FLOPs (the FlashAttention papers' count); reads qkv, writes out and the fp32 lse.
     */
    static OpCost attentionForward(long b, long t, long c, long nh, int e) {
        return new OpCost(2.0 * b * t * t * c, e * 4.0 * b * t * c + 4.0 * b * nh * t);
    }

    /** Its backward: 2.5 times the forward's FLOPs; reads qkv, out, dout, lse, adds into dqkv. */
    static OpCost attentionBackward(long b, long t, long c, long nh, int e) {
        return new OpCost(5.0 * b * t * t * c, e * (3.0 + 1 + 1 + 6) * b * t * c + 4.0 * b * nh * t);
    }

    /** LayerNorm forward: about 8 FLOPs an element; reads inp, writes out, mean and rstd. */
    static OpCost layerNormForward(long n, long c, int e) {
        return new OpCost(8.0 * n * c, e * 2.0 * n * c + 8.0 * n);
    }

    /** LayerNorm backward: about 14 FLOPs an element; reads dout and inp, adds into dinp. */
    static OpCost layerNormBackward(long n, long c, int e) {
        return new OpCost(14.0 * n * c, e * 4.0 * n * c + 8.0 * n);
    }

    /** An element-wise op of {@code flopsEach} FLOPs an element that touches {@code tensors} tensors of n elements. */
    static OpCost elementwise(long n, double flopsEach, int tensors, int e) {
        return new OpCost(flopsEach * n, (double) e * tensors * n);
    }

    /** Softmax cross-entropy over {@code n} rows of {@code vp} logits: reads them twice and writes the gradient. */
    static OpCost crossEntropy(long n, long v, long vp, int e) {
        return new OpCost(6.0 * n * v, e * 3.0 * n * vp + 8.0 * n);
    }

    /** An AdamW update of n parameters: params (+ fp32 master) and moments read and written, grads read. */
    static OpCost adamw(long n, int e, boolean master) {
        return new OpCost(16.0 * n, n * (2.0 * e + (master ? 8 : 0) + e + 16));
    }
}
