package dev.anvil.kernels.cuda;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.util.function.Supplier;

/**
 * How every CUDA test says "this needs a GPU, a library or the built kernels". By default a missing
 * one skips the test, with the reason printed, as on a machine without a GPU. With
 * {@code -Danvil.requireCuda=true} (which {@code bin/anvil-test} sets where it sees a GPU, and
 * {@code ./mvnw verify -Danvil.requireCuda=true} passes on) it fails the test instead, so that a
 * GPU run whose CUDA tests skipped cannot pass as a green run.
 */
public final class RequireCuda {

    /** The system property that turns skips into failures. */
    public static final String PROPERTY = "anvil.requireCuda";

    private RequireCuda() {
    }

    /** Whether this run was told that CUDA must be there. */
    public static boolean required() {
        return Boolean.getBoolean(PROPERTY);
    }

    /** Skips the test (or, when {@link #required()}, fails it) unless {@code available}. */
    public static void assume(boolean available, Supplier<String> why) {
        check(available, required(), why);
    }

    /** Opens a CUDA backend, or skips (fails when required) saying why it cannot open. */
    public static CudaBackend openBackend() {
        return openBackend(CudaOptions.defaults());
    }

    /** {@link #openBackend()} with these options. */
    public static CudaBackend openBackend(CudaOptions options) {
        assume(CudaBackend.isAvailable(), () -> CudaBackend.unavailableReason().orElseThrow());
        return CudaBackend.open(options);
    }

    /** {@link #assume} with the switch as an argument, so the switch itself is tested. */
    static void check(boolean available, boolean required, Supplier<String> why) {
        if (available) {
            return;
        }
        String reason = why.get();
        if (required) {
            Assertions.fail(PROPERTY + " is set, but: " + reason);
        }
        System.out.println("skipping: " + reason);
        Assumptions.abort(reason);
    }
}
