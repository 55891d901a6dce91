package io.stockflight.tableau.conformance;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Pattern;

/** The runner's command line. */
record Options(
    Path tests,
    Path dialect,
    String url,
    Properties credentials,
    Path connector,
    Map<String, String> attributes,
    String table,
    Path out,
    Pattern only,
    Path baseline,
    Path record,
    String source) {

    /** Environment variable the token may come from, so it stays out of process listings. */
    static final String TOKEN_ENV = "STOCKFLIGHT_CONFORMANCE_TOKEN";
    /** Environment variable the connector's secure {@code password} attribute may come from. */
    static final String PASSWORD_ENV = "STOCKFLIGHT_CONFORMANCE_PASSWORD";

    static final String USAGE = """
        Usage: conformance --tests DIR --dialect FILE (--url JDBC_URL | --connector DIR --attr K=V...) [options]

        Translates every calculation of a TDVT expression-test directory (setup.<name>.txt and
        expected.setup.<name>[.<n>].txt) with a connector's dialect.tdd, runs it through the
        Arrow Flight SQL JDBC driver and compares the distinct values with the expected ones.

          --tests DIR        the TDVT directory
          --dialect FILE     the connector's dialect.tdd
          --url URL          jdbc:arrow-flight-sql://HOST:PORT/?useEncryption=false
          --user NAME        sign in with a user and --password
          --password PW
          --token TOKEN      sign in with a static token (or set %s)
          --connector DIR    instead of --url: connect with the URL and properties the
                             connector's connectionBuilder.js and connectionProperties.js make
          --attr KEY=VALUE   a connection attribute for them (server, port, sslmode,
                             authentication, username; the password from %s)
          --table NAME       the table the calculations read (default calcs)
          --out DIR          where conformance.md and failures.md go (default conformance-out)
          --only REGEX       only the tests whose names match
          --baseline FILE    exit 1 when any pass rate recorded there drops
          --record FILE      record this run's pass rates there
          --source LABEL     how the reports name the test directory (default: its path)
        """.formatted(TOKEN_ENV, PASSWORD_ENV);

    /** Parses {@code args}; a bad command line throws {@link IllegalArgumentException} with the reason. */
    static Options parse(String[] args) {
        Path tests = null;
        Path dialect = null;
        String url = null;
        Properties credentials = new Properties();
        Path connector = null;
        Map<String, String> attributes = new LinkedHashMap<>();
        String table = "calcs";
        Path out = Path.of("conformance-out");
        Pattern only = null;
        Path baseline = null;
        Path record = null;
        String source = null;
        for (int i = 0; i < args.length; i++) {
            String flag = args[i];
            if (flag.equals("-h") || flag.equals("--help")) {
                throw new IllegalArgumentException("");
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(flag + " needs a value");
            }
            String value = args[++i];
            switch (flag) {
                case "--tests" -> tests = Path.of(value);
                case "--dialect" -> dialect = Path.of(value);
                case "--url" -> url = value;
                case "--user" -> credentials.setProperty("user", value);
                case "--password" -> credentials.setProperty("password", value);
                case "--token" -> credentials.setProperty("token", value);
                case "--connector" -> connector = Path.of(value);
                case "--attr" -> {
                    int eq = value.indexOf('=');
                    if (eq < 1) {
                        throw new IllegalArgumentException("--attr needs KEY=VALUE, not " + value);
                    }
                    attributes.put(value.substring(0, eq), value.substring(eq + 1));
                }
                case "--table" -> table = value;
                case "--out" -> out = Path.of(value);
                case "--only" -> only = Pattern.compile(value);
                case "--baseline" -> baseline = Path.of(value);
                case "--record" -> record = Path.of(value);
                case "--source" -> source = value;
                default -> throw new IllegalArgumentException("unknown option " + flag);
            }
        }
        if (tests == null || dialect == null || (url == null) == (connector == null)) {
            throw new IllegalArgumentException("--tests, --dialect and one of --url or --connector are required");
        }
        String password = System.getenv(PASSWORD_ENV);
        if (password != null && !attributes.containsKey("password")) {
            attributes.put("password", password);
        }
        String token = System.getenv(TOKEN_ENV);
        if (!credentials.containsKey("token") && token != null && !token.isEmpty()) {
            credentials.setProperty("token", token);
        }
        return new Options(tests, dialect, url, credentials, connector, Map.copyOf(attributes), table, out, only, baseline, record,
            source == null ? tests.toString() : source);
    }
}
