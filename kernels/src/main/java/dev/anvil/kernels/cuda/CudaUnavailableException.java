package dev.anvil.kernels.cuda;

/**
 * The CUDA backend cannot run here: no driver, no device, no cuBLASLt, or kernels not built.
 * The message is one line, {@code "no CUDA device: <reason>"}, fit to show a user as it is.
 */
public final class CudaUnavailableException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** @param reason why, without the {@code "no CUDA device: "} prefix */
    public CudaUnavailableException(String reason) {
        super("no CUDA device: " + reason);
    }

    /** @param reason why; {@code cause} is the underlying failure */
    public CudaUnavailableException(String reason, Throwable cause) {
        super("no CUDA device: " + reason, cause);
    }
}
