package dev.anvil.collective.tls;

import dev.anvil.collective.CollectiveException;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.net.ssl.SSLException;

/**
 * Mutual TLS for coordinator and ring connections, from PEM files made by {@code bin/anvil-certs} (or any CA).
 * Both sides present a certificate signed by the job's CA and check the other's. Peers are authenticated by that
 * CA, not by host name: every certificate the job CA signed is a member of the job.
 *
 * @param caCert PEM certificate of the job CA
 * @param nodeCert PEM certificate of this node, signed by the CA
 * @param nodeKey PEM PKCS#8 private key of this node (unencrypted)
 */
public record TlsConfig(Path caCert, Path nodeCert, Path nodeKey) {

    /** Checks that the files exist, so a typo fails at start-up with the path rather than at the first handshake. */
    public TlsConfig {
        for (Path p : new Path[] {caCert, nodeCert, nodeKey}) {
            if (p == null || !Files.isReadable(p)) {
                throw new CollectiveException("TLS file " + p + " is missing or unreadable; create the CA and node"
                        + " certificates with bin/anvil-certs");
            }
        }
    }

    /** Server side: requires a client certificate signed by the CA. */
    public SslContext serverContext() {
        try {
            return SslContextBuilder.forServer(nodeCert.toFile(), nodeKey.toFile())
                    .sslProvider(SslProvider.JDK)
                    .trustManager(caCert.toFile())
                    .clientAuth(ClientAuth.REQUIRE)
                    .protocols("TLSv1.3")
                    .build();
        } catch (SSLException | IllegalArgumentException e) {
            throw invalid(e);
        }
    }

    /** Client side: presents this node's certificate and accepts only servers signed by the CA. */
    public SslContext clientContext() {
        try {
            return SslContextBuilder.forClient()
                    .sslProvider(SslProvider.JDK)
                    .keyManager(nodeCert.toFile(), nodeKey.toFile())
                    .trustManager(caCert.toFile())
                    .endpointIdentificationAlgorithm(null)
                    .protocols("TLSv1.3")
                    .build();
        } catch (SSLException | IllegalArgumentException e) {
            throw invalid(e);
        }
    }

    private CollectiveException invalid(Exception e) {
        return new CollectiveException("cannot load TLS material (CA " + caCert + ", certificate " + nodeCert
                + ", key " + nodeKey + "): " + e.getMessage() + "; the key must be unencrypted PKCS#8 PEM", e);
    }
}
