package dev.anvil.kernels.cuda;

import dev.anvil.kernels.DType;
import dev.anvil.kernels.cuda.driver.Driver;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Anvil's own kernels: the fatbin built from {@code src/main/cuda} by nvcc, loaded from the
 * classpath into the current context, with every entry point resolved once.
 */
final class CudaKernels implements AutoCloseable {

    /** Classpath location of the fatbin, next to this class. */
    static final String RESOURCE = "anvil_kernels.fatbin";

    /** The largest head size the attention kernels are instantiated for. */
    static final int MAX_HEAD_SIZE = 128;
    private static final int[] HEAD_SIZES = {32, 64, 128};

    /** An entry point compiled for fp32 and for bf16 storage. */
    record Typed(MemorySegment f32, MemorySegment bf16) {
        MemorySegment of(DType dtype) {
            return switch (dtype) {
                case FP32 -> f32;
                case BF16 -> bf16;
                case INT32 -> throw new IllegalArgumentException("no INT32 variant of this kernel");
            };
        }
    }

    private final MemorySegment module;
    final Typed encoderForward, encoderBackwardWpe, encoderBackwardWte;
    final Typed layernormForward, layernormBackwardInput, layernormBackwardParams;
    final Typed columnPartialSums, addPartialSums, sumSquaresPartial;
    final Typed geluForward, geluBackward, residualForward, residualBackward;
    final Typed softmaxCrossEntropy, attentionBackwardDelta;
    final MemorySegment sumSquaresFinal, convertF32ToBf16, convertBf16ToF32;
    final MemorySegment adamwF32, adamwBf16, adamwBf16F32Grads;
    private final Typed[] attentionForward, attentionBackwardKv, attentionBackwardQ;

    /** Whether the build put the fatbin on the classpath (it does where nvcc was found). */
    static boolean built() {
        return CudaKernels.class.getResource(RESOURCE) != null;
    }

    /** Loads the fatbin into the current context; the image is copied into {@code arena} first. */
    CudaKernels(Arena arena) {
        byte[] image;
        try (InputStream in = CudaKernels.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new CudaUnavailableException("the CUDA kernels were not built (nvcc was not found at build time)");
            }
            image = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + RESOURCE, e);
        }
        MemorySegment native_ = arena.allocate(image.length, 256);
        MemorySegment.copy(MemorySegment.ofArray(image), 0, native_, 0, image.length);
        module = Driver.moduleLoadData(native_);
        encoderForward = typed("encoder_forward");
        encoderBackwardWpe = typed("encoder_backward_wpe");
        encoderBackwardWte = typed("encoder_backward_wte");
        layernormForward = typed("layernorm_forward");
        layernormBackwardInput = typed("layernorm_backward_input");
        layernormBackwardParams = typed("layernorm_backward_params");
        columnPartialSums = typed("column_partial_sums");
        addPartialSums = typed("add_partial_sums");
        sumSquaresPartial = typed("sum_squares_partial");
        geluForward = typed("gelu_forward");
        geluBackward = typed("gelu_backward");
        residualForward = typed("residual_forward");
        residualBackward = typed("residual_backward");
        softmaxCrossEntropy = typed("softmax_cross_entropy");
        attentionBackwardDelta = typed("attention_backward_delta");
        sumSquaresFinal = function("sum_squares_final");
        convertF32ToBf16 = function("convert_f32_to_bf16");
        convertBf16ToF32 = function("convert_bf16_to_f32");
        adamwF32 = function("adamw_f32_f32");
        adamwBf16 = function("adamw_bf16_bf16");
        adamwBf16F32Grads = function("adamw_bf16_f32");
        attentionForward = new Typed[HEAD_SIZES.length];
        attentionBackwardKv = new Typed[HEAD_SIZES.length];
        attentionBackwardQ = new Typed[HEAD_SIZES.length];
        for (int i = 0; i < HEAD_SIZES.length; i++) {
            attentionForward[i] = headTyped("attention_forward", HEAD_SIZES[i]);
            attentionBackwardKv[i] = headTyped("attention_backward_kv", HEAD_SIZES[i]);
            attentionBackwardQ[i] = headTyped("attention_backward_q", HEAD_SIZES[i]);
        }
    }

    private MemorySegment function(String name) {
        return Driver.moduleGetFunction(module, name);
    }

    private Typed typed(String name) {
        return new Typed(function(name + "_f32"), function(name + "_bf16"));
    }

    private Typed headTyped(String name, int hs) {
        return new Typed(function(name + "_f32_hs" + hs), function(name + "_bf16_hs" + hs));
    }

    /** Rows per tile of the attention kernels for head size {@code hs}: their block size. */
    static int attentionTile(int hs) {
        return bound(hs) <= 64 ? 32 : 16;
    }

    MemorySegment attentionForward(DType dtype, int hs) {
        return attentionForward[headIndex(hs)].of(dtype);
    }

    MemorySegment attentionBackwardKv(DType dtype, int hs) {
        return attentionBackwardKv[headIndex(hs)].of(dtype);
    }

    MemorySegment attentionBackwardQ(DType dtype, int hs) {
        return attentionBackwardQ[headIndex(hs)].of(dtype);
    }

    private static int bound(int hs) {
        return HEAD_SIZES[headIndex(hs)];
    }

    private static int headIndex(int hs) {
        for (int i = 0; i < HEAD_SIZES.length; i++) {
            if (hs <= HEAD_SIZES[i]) {
                return i;
            }
        }
        throw new IllegalArgumentException("head size " + hs + " exceeds the " + MAX_HEAD_SIZE
                + " the CUDA attention kernels are built for");
    }

    @Override
    public void close() {
        Driver.moduleUnload(module);
    }
}
