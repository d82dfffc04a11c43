package dev.anvil.collective.link;

import java.io.IOException;

/** The peer sent something the data protocol does not allow; the message says what. */
public final class ProtocolException extends IOException {
    public ProtocolException(String message) {
        super(message);
    }
}
