package dev.anvil.kernels;

/**
 * A compute backend: memory it owns and the ops of GPT training on it. Ops may run asynchronously
 * (a GPU backend queues them on a stream); {@link #download} and {@link #synchronize} wait.
 * A backend is used from one thread at a time.
 */
public interface Backend extends FusedOps, OptimizerOps, AutoCloseable {

    /** A short name for logs, e.g. {@code "cpu (2 threads, AVX2 256-bit)"}. */
    String description();

    /** Whether buffers of {@code dtype} can be allocated. */
    boolean supports(DType dtype);

    /** Frees every buffer this backend allocated and its threads or device context. */
    @Override
    void close();
}
