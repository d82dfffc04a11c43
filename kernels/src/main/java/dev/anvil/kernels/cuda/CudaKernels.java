package dev.anvil.kernels.cuda;

import dev.anvil.kernels.DType;
import dev.anvil.kernels.cuda.driver.Driver;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * Anvil's own kernels: the fatbin built from {@code src/main/cuda} by nvcc, loaded from the
 * classpath into the current context, with every entry point resolved once.
 */
final class CudaKernels implements AutoCloseable {

    /** Classpath location of the fatbin, next to this class. */
    static final String RESOURCE = "anvil_kernels.fatbin";
    /** Classpath location of the build's note of which CUDA compiled the fatbin ({@code cuda.version=13.0}). */
    static final String PROPERTIES = "anvil_kernels.properties";

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

    /** Kernels compiled for both storage types, as {@code <name>_f32} and {@code <name>_bf16}. */
    private static final List<String> TYPED = List.of("encoder_forward", "encoder_backward_wpe",
            "encoder_backward_wte", "layernorm_forward", "layernorm_backward_input", "layernorm_backward_params",
            "column_partial_sums", "add_partial_sums", "sum_squares_partial", "gelu_forward", "gelu_backward",
            "residual_forward", "residual_backward", "softmax_cross_entropy", "attention_backward_delta");
    /** Attention kernels, as {@code <name>_<f32|bf16>_hs<bound>}. */
    private static final List<String> PER_HEAD_SIZE = List.of("attention_forward", "attention_backward_kv",
            "attention_backward_q");
    /** Kernels with one fixed signature. */
    private static final List<String> SINGLE = List.of("encoder_backward_wte_order", "sum_squares_final",
            "convert_f32_to_bf16", "convert_bf16_to_f32", "adamw_f32_f32", "adamw_bf16_bf16", "adamw_bf16_f32");
    /** Block size of {@code encoder_backward_wte_order}, its {@code ENC_ORDER_TILE}. */
    static final int ENCODER_ORDER_THREADS = 128;

    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new HashMap<>();
    final Typed encoderForward, encoderBackwardWpe, encoderBackwardWte;
    final Typed layernormForward, layernormBackwardInput, layernormBackwardParams;
    final Typed columnPartialSums, addPartialSums, sumSquaresPartial;
    final Typed geluForward, geluBackward, residualForward, residualBackward;
    final Typed softmaxCrossEntropy, attentionBackwardDelta;
    final MemorySegment encoderBackwardWteOrder, sumSquaresFinal, convertF32ToBf16, convertBf16ToF32;
    final MemorySegment adamwF32, adamwBf16, adamwBf16F32Grads;
    private final Typed[] attentionForward, attentionBackwardKv, attentionBackwardQ;

    /** Whether the build put the fatbin on the classpath (it does where nvcc was found). */
    static boolean built() {
        return CudaKernels.class.getResource(RESOURCE) != null;
    }

    /**
     * The CUDA version whose nvcc built the fatbin, as the driver API writes versions (13000 for
     * 13.0), or 0 when the build did not record it.
     */
    static int cudaVersion() {
        Properties p = new Properties();
        try (InputStream in = CudaKernels.class.getResourceAsStream(PROPERTIES)) {
            if (in == null) {
                return 0;
            }
            p.load(in);
        } catch (IOException e) {
            return 0;
        }
        return parseVersion(p.getProperty("cuda.version", ""));
    }

    /** {@code "13.0"} as 13000; 0 for anything else. */
    static int parseVersion(String text) {
        String[] parts = text.strip().split("\\.");
        try {
            return parts.length == 2 ? Integer.parseInt(parts[0]) * 1000 + Integer.parseInt(parts[1]) * 10 : 0;
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** Every entry point this class resolves, by its {@code extern "C"} name. */
    static List<String> entryPoints() {
        List<String> names = new ArrayList<>(SINGLE);
        for (String t : List.of("f32", "bf16")) {
            TYPED.forEach(n -> names.add(n + "_" + t));
            for (int hs : HEAD_SIZES) {
                PER_HEAD_SIZE.forEach(n -> names.add(n + "_" + t + "_hs" + hs));
            }
        }
        return names;
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
        for (String name : entryPoints()) {
            functions.put(name, Driver.moduleGetFunction(module, name));
        }
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
        encoderBackwardWteOrder = function("encoder_backward_wte_order");
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
            attentionForward[i] = typed("attention_forward", HEAD_SIZES[i]);
            attentionBackwardKv[i] = typed("attention_backward_kv", HEAD_SIZES[i]);
            attentionBackwardQ[i] = typed("attention_backward_q", HEAD_SIZES[i]);
        }
    }

    /** A resolved entry point; every name used here must be one of {@link #entryPoints()}. */
    private MemorySegment function(String name) {
        MemorySegment f = functions.get(name);
        if (f == null) {
            throw new IllegalStateException("kernel " + name + " is not among the entry points");
        }
        return f;
    }

    private Typed typed(String name) {
        return new Typed(function(name + "_f32"), function(name + "_bf16"));
    }

    private Typed typed(String name, int hs) {
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
