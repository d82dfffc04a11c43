package dev.anvil.collective;

/** A collective, rendezvous or connection failed; the message says what went wrong and, where possible, what to fix. */
public class CollectiveException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message what failed and what to fix */
    public CollectiveException(String message) {
        super(message);
    }

    /**
     * @param message what failed and what to fix
     * @param cause the underlying failure
     */
    public CollectiveException(String message, Throwable cause) {
        super(message, cause);
    }
}
