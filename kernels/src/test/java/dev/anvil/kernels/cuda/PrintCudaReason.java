package dev.anvil.kernels.cuda;

/** Prints why the CUDA backend cannot open here ("available" if it can): run in a child JVM by tests. */
public final class PrintCudaReason {

    private PrintCudaReason() {
    }

    public static void main(String[] args) {
        System.out.println(CudaBackend.unavailableReason().orElse("available"));
    }
}
