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
import java.util.stream.Stream;

/**
 * Anvil's own kernels: the fatbin built from {@code src/main/cuda} by nvcc, loaded from the
 * classpath into the current context. Each op family resolves its entry points through it and
 * declares their names ({@code ENTRY_POINTS}), so the build can be checked for them without a GPU.
 */
final class CudaKernels implements AutoCloseable {

    /** Classpath location of the fatbin, next to this class. */
    static final String RESOURCE = "anvil_kernels.fatbin";
    /** Classpath location of the build's note of which CUDA compiled the fatbin ({@code cuda.version=13.0}). */
    static final String PROPERTIES = "anvil_kernels.properties";

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
    private final Map<String, MemorySegment> functions = new HashMap<>();

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

    /** Every entry point the op families resolve, by its {@code extern "C"} name. */
    static List<String> entryPoints() {
        return Stream.of(CudaEncoder.ENTRY_POINTS, CudaLayerNorm.ENTRY_POINTS, CudaColumnSums.ENTRY_POINTS,
                        CudaAttention.ENTRY_POINTS, CudaGelu.ENTRY_POINTS, CudaResidual.ENTRY_POINTS,
                        CudaCrossEntropy.ENTRY_POINTS, CudaAdamW.ENTRY_POINTS, CudaBackend.ENTRY_POINTS)
                .flatMap(List::stream).toList();
    }

    /**
     * Entry-point names: {@code <name>_f32} and {@code <name>_bf16} for each of {@code typed} (kernels
     * instantiated for both storage types by {@code EXPORT_F32_BF16}), then {@code single} as they are.
     */
    static List<String> names(List<String> typed, List<String> single) {
        List<String> names = new ArrayList<>();
        for (String n : typed) {
            names.add(n + "_f32");
            names.add(n + "_bf16");
        }
        names.addAll(single);
        return List.copyOf(names);
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
    }

    /** The entry point {@code name}, resolved once; every name used must be one of {@link #entryPoints()}. */
    MemorySegment function(String name) {
        if (!entryPoints().contains(name)) {
            throw new IllegalStateException("kernel " + name + " is not among the entry points");
        }
        return functions.computeIfAbsent(name, n -> Driver.moduleGetFunction(module, n));
    }

    /** The value of the module's {@code __device__ const int name} (one of {@link #constants()}); waits for {@code stream}. */
    int constant(String name, MemorySegment stream) {
        if (!constants().contains(name)) {
            throw new IllegalStateException("constant " + name + " is not among the module's published constants");
        }
        return Driver.moduleGlobalInt(module, name, stream);
    }

    /** The {@code __device__ const int}s the kernels publish for the host: dynamic shared memory sizes. */
    static List<String> constants() {
        return CudaAttention.CONSTANTS;
    }

    /** The fp32 and bf16 instances of {@code name}: {@code <name>_f32} and {@code <name>_bf16}. */
    Typed typed(String name) {
        return new Typed(function(name + "_f32"), function(name + "_bf16"));
    }

    @Override
    public void close() {
        Driver.moduleUnload(module);
    }
}
