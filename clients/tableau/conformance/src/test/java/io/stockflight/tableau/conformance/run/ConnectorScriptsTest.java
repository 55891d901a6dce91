package io.stockflight.tableau.conformance.run;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;

/** The connector's own connectionBuilder.js and connectionProperties.js on the dialog's choices. */
class ConnectorScriptsTest {
    private static final Path CONNECTOR = Path.of("../connector");

    private static Properties props(String... kv) {
        Properties p = new Properties();
        for (int i = 0; i < kv.length; i += 2) {
            p.setProperty(kv[i], kv[i + 1]);
        }
        return p;
    }

    @Test
    void userAndPasswordOverTlsWithACompanyCa() throws Exception {
        ConnectorScripts s = ConnectorScripts.run(CONNECTOR, Map.of("server", "flight.example.internal", "port", "50051",
            "sslmode", "require", "v-tls-root-certs", "/etc/ca.pem", "authentication", "auth-user-pass", "username",
            "analyst", "password", "secret"));
        assertEquals("jdbc:arrow-flight-sql://flight.example.internal:50051/?useEncryption=true", s.url());
        assertEquals(props("user", "analyst", "password", "secret", "tlsRootCerts", "/etc/ca.pem"), s.properties());
    }

    @Test
    void aTokenInPlaintextAndNoSignIn() throws Exception {
        ConnectorScripts token = ConnectorScripts.run(CONNECTOR, Map.of("server", "127.0.0.1", "port", "4000", "sslmode", "",
            "v-tls-root-certs", "/etc/ca.pem", "authentication", "auth-pass", "password", "t0ken"));
        assertEquals("jdbc:arrow-flight-sql://127.0.0.1:4000/?useEncryption=false", token.url());
        // No TLS: the CA is not passed on.
        assertEquals(props("token", "t0ken"), token.properties());
        ConnectorScripts none = ConnectorScripts.run(CONNECTOR, Map.of("server", "localhost", "port", "50051", "sslmode",
            "require", "authentication", "auth-none"));
        assertEquals("jdbc:arrow-flight-sql://localhost:50051/?useEncryption=true", none.url());
        assertEquals(new Properties(), none.properties());
    }
}
