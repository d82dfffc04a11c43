package dev.anvil.kernels.cuda.driver;

/**
 * A CUDA driver or cuBLASLt call returned an error status. The message names the call and the
 * library's own name and description of the status, e.g.
 * {@code cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory}.
 */
public final class CudaException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String call;
    private final int status;
    private final String statusName;

    /**
     * @param call        the C function that failed
     * @param status      its status code ({@code CUresult} or {@code cublasStatus_t})
     * @param statusName  the library's name for the code, e.g. {@code CUDA_ERROR_NO_DEVICE}
     * @param description the library's description of the code
     */
    public CudaException(String call, int status, String statusName, String description) {
        super(call + " failed: " + statusName + " (" + status + "): " + description);
        this.call = call;
        this.status = status;
        this.statusName = statusName;
    }

    /** The C function that failed, e.g. {@code cuMemAlloc_v2}. */
    public String call() {
        return call;
    }

    /** The status code it returned. */
    public int status() {
        return status;
    }

    /** The library's name for the status, e.g. {@code CUDA_ERROR_NO_DEVICE}. */
    public String statusName() {
        return statusName;
    }
}
