package dev.anvil.kernels.cpu;

/**
 * Whether the CPU backend's Vector API kernels can run: the incubating module
 * {@code jdk.incubator.vector} must be resolved (the launchers pass
 * {@code --add-modules jdk.incubator.vector}) and not switched off with
 * {@code -Danvil.cpu.simd=false}. Where it is missing, every op has a scalar loop that gives the
 * same results up to float rounding.
 */
final class Simd {

    private static final boolean AVAILABLE =
            ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
                    && !"false".equalsIgnoreCase(System.getProperty("anvil.cpu.simd"));

    private Simd() {
    }

    /** True when the Vector API kernels may be used. */
    static boolean available() {
        return AVAILABLE;
    }
}
