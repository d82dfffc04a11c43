package dev.anvil.collective;

/** How neighbouring ranks exchange collective data. */
public enum DataTransport {
    /** Shared memory between ranks on the same host, TCP between hosts. */
    AUTO,
    /** TCP everywhere (loopback between ranks on one host). */
    TCP,
    /** Shared memory; ranks on different hosts are refused, naming them. */
    SHM
}
