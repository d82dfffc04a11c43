package dev.anvil.kernels.cuda.driver;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What the CUDA backend needs of the NVIDIA driver, and the one-line explanations a user gets when
 * the driver falls short. Pure functions of version numbers and paths, so they are tested anywhere.
 *
 * <p>Versions are the driver API's integers: {@code 1000·major + 10·minor}, e.g. 12040 for CUDA 12.4,
 * as {@code cuDriverGetVersion} reports them. Code built by CUDA {@code X.y} (our kernels, built by
 * nvcc, and cuBLASLt {@code X}) runs on a driver for CUDA {@code X.0} or newer.
 */
public final class DriverRequirements {

    /** {@code CUDA_ERROR_STUB_LIBRARY}: the libcuda that was loaded is CUDA's link-time stub. */
    public static final int STATUS_STUB_LIBRARY = 34;
    /** The oldest CUDA whose driver API this code binds (the {@code _v2} entry points and others). */
    static final int OLDEST_SUPPORTED = 12000;
    /** The first driver branch of each CUDA major version. */
    private static final Map<Integer, Integer> FIRST_BRANCH = Map.of(11, 450, 12, 525, 13, 580);

    private DriverRequirements() {
    }

    /**
     * Why a driver reporting {@code driverVersion} cannot run the kernels built by CUDA
     * {@code kernelsCuda} together with cuBLASLt of major version {@code cublasMajor}; empty when it
     * can. A version of 0 is unknown and asks for nothing.
     */
    public static Optional<String> versionProblem(int driverVersion, int kernelsCuda, int cublasMajor) {
        int needed = Math.max(OLDEST_SUPPORTED, Math.max(kernelsCuda / 1000, cublasMajor) * 1000);
        if (driverVersion >= needed) {
            return Optional.empty();
        }
        List<String> needs = new ArrayList<>();
        if (kernelsCuda / 1000 * 1000 == needed) {
            needs.add("Anvil's kernels (built by nvcc " + version(kernelsCuda) + ")");
        }
        if (cublasMajor * 1000 == needed) {
            needs.add("cuBLASLt " + cublasMajor);
        }
        if (needs.isEmpty()) {
            needs.add("Anvil's CUDA backend");
        }
        int driverMajor = driverVersion / 1000;
        String update = "update the NVIDIA driver" + branch(needed / 1000);
        String ways = driverMajor * 1000 < OLDEST_SUPPORTED
                ? update
                : update + ", or build the kernels with a CUDA " + driverMajor + " nvcc (./mvnw package -Danvil.nvcc="
                        + "/usr/local/cuda-" + driverMajor + "/bin/nvcc) and provide libcublasLt.so." + driverMajor;
        boolean plural = needs.size() > 1 || needs.getFirst().startsWith("Anvil's kernels");
        return Optional.of("the NVIDIA driver supports CUDA " + version(driverVersion) + ", but "
                + String.join(" and ", needs) + (plural ? " need" : " needs") + " a driver for CUDA "
                + version(needed) + " or newer: " + ways);
    }

    /**
     * The explanation when {@code cuInit} answered {@link #STATUS_STUB_LIBRARY}: the library loaded
     * as the driver ({@code loadedFrom}, when known) is CUDA's stub for linking programs.
     */
    public static String stubLibrary(Optional<Path> loadedFrom) {
        String where = loadedFrom.map(p -> " (" + p + ")").orElse("");
        String folder = loadedFrom.map(Path::getParent).map(d -> " (" + d + ")").orElse("");
        return "the libcuda that was loaded" + where + " is CUDA's stub for linking, not the NVIDIA driver"
                + " (cuInit: CUDA_ERROR_STUB_LIBRARY): install the NVIDIA driver, or take the stub's folder" + folder
                + " out of LD_LIBRARY_PATH and " + LibraryLocator.ENV_DIR;
    }

    /** {@code 13000} as {@code 13.0}. */
    static String version(int v) {
        return v / 1000 + "." + v % 1000 / 10;
    }

    private static String branch(int major) {
        Integer r = FIRST_BRANCH.get(major);
        return r == null ? "" : " to r" + r + " or newer";
    }
}
