package io.stockflight.clients;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.Properties;

/**
 * Runs SQL statements against a running stockflight-server through the Arrow Flight SQL JDBC
 * driver, as a BI tool's JDBC path does, and prints every result as one JSON document on stdout,
 * for the platform end-to-end test (tests/platform_e2e.rs) to compare with its own aggregates:
 *
 * <pre>
 * [{"sql": "...", "columns": ["a", ...], "types": ["BIGINT", ...], "rows": [[1, "x", null, "0.5"], ...]}, ...]
 * </pre>
 *
 * <p>Cells: integers as JSON numbers, text as strings, NULL as null, floating point as a string
 * ({@link Double#toString}, which parses back to the same double; a JSON number could be rounded
 * by the reader), timestamps as microseconds since the epoch (run with
 * {@code -Duser.timezone=UTC}: the driver reads time-zone-less timestamps in the JVM's zone).
 *
 * <p>The statement {@code !tables} lists the catalog instead, as {@code DatabaseMetaData.getTables}
 * reports it: columns {@code table_name} and {@code table_type}, one row per table of schema
 * {@code public}.
 *
 * <p>Usage: {@code java $STOCKFLIGHT_JAVA_OPTS -Duser.timezone=UTC -cp "$STOCKFLIGHT_JDBC_CLASSPATH"
 * io.stockflight.clients.E2eQuery HOST:PORT USER PASSWORD SQL...}. Exits 1 on any failure.
 */
public final class E2eQuery {
    private E2eQuery() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: E2eQuery HOST:PORT USER PASSWORD SQL...");
            System.exit(2);
        }
        StringBuilder out = new StringBuilder("[");
        try (Connection conn = connect(args[0], args[1], args[2])) {
            for (int q = 3; q < args.length; q++) {
                if (q > 3) {
                    out.append(",\n");
                }
                query(conn, args[q], out);
            }
        } catch (SQLException e) {
            System.err.println("E2eQuery: " + e);
            e.printStackTrace();
            System.exit(1);
        }
        out.append("]");
        System.out.println(out);
    }

    /** A plaintext Flight SQL JDBC connection to HOST:PORT, logged in as USER. */
    static Connection connect(String hostPort, String user, String password) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        return DriverManager.getConnection("jdbc:arrow-flight-sql://" + hostPort + "/?useEncryption=false", props);
    }

    static void query(Connection conn, String sql, StringBuilder out) throws SQLException {
        if (sql.equals("!tables")) {
            tables(conn, out);
            return;
        }
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            ResultSetMetaData meta = rs.getMetaData();
            int n = meta.getColumnCount();
            out.append("{\"sql\": ").append(quote(sql)).append(", \"columns\": [");
            for (int i = 1; i <= n; i++) {
                out.append(i > 1 ? ", " : "").append(quote(meta.getColumnLabel(i)));
            }
            out.append("], \"types\": [");
            for (int i = 1; i <= n; i++) {
                out.append(i > 1 ? ", " : "").append(quote(meta.getColumnTypeName(i)));
            }
            out.append("], \"rows\": [");
            boolean first = true;
            while (rs.next()) {
                out.append(first ? "\n[" : ",\n[");
                first = false;
                for (int i = 1; i <= n; i++) {
                    out.append(i > 1 ? ", " : "").append(cell(rs, i));
                }
                out.append("]");
            }
            out.append("]}");
        }
    }

    /** The tables of schema {@code public} and their types, from {@code DatabaseMetaData.getTables}. */
    static void tables(Connection conn, StringBuilder out) throws SQLException {
        out.append("{\"sql\": \"!tables\", \"columns\": [\"table_name\", \"table_type\"], \"types\": [], \"rows\": [");
        boolean first = true;
        try (ResultSet rs = conn.getMetaData().getTables(null, "public", "%", null)) {
            while (rs.next()) {
                out.append(first ? "\n[" : ",\n[");
                first = false;
                out.append(quote(rs.getString("TABLE_NAME"))).append(", ").append(quote(rs.getString("TABLE_TYPE")));
                out.append("]");
            }
        }
        out.append("]}");
    }

    /** One cell as JSON, by the Java class the driver maps the Arrow type to. */
    private static String cell(ResultSet rs, int i) throws SQLException {
        Object value = rs.getObject(i);
        if (value == null) {
            return "null";
        }
        if (value instanceof Timestamp) {
            Timestamp t = rs.getTimestamp(i);
            long micros = Math.floorDiv(t.getTime(), 1000L) * 1_000_000L + t.getNanos() / 1000;
            return Long.toString(micros);
        }
        if (value instanceof Double || value instanceof Float) {
            return quote(Double.toString(((Number) value).doubleValue()));
        }
        if (value instanceof Long || value instanceof Integer || value instanceof Short || value instanceof Byte) {
            return Long.toString(((Number) value).longValue());
        }
        if (value instanceof Boolean) {
            return value.toString();
        }
        return quote(value.toString());
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}
