package dev.anvil.kernels.cuda.driver;

/** A native CUDA library could not be found or loaded; the message lists every place searched. */
public final class LibraryNotFoundException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** @param message what was missing and where it was looked for */
    public LibraryNotFoundException(String message) {
        super(message);
    }
}
