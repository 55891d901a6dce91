package io.stockflight.clients;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * One long-lived JDBC session through the Arrow Flight SQL JDBC driver, as a BI tool holds one:
 * connects (and logs in) once, then runs each SQL line read from stdin on that connection and
 * prints one JSON line per statement on stdout, in {@link E2eQuery}'s format, or
 * {@code {"error": "..."}} when the statement fails (the session goes on). Prints
 * {@code {"connected": true}} once logged in. Used by tests/python/test_server_replicas.py, which
 * kills a server replica behind a load balancer between two statements of one session.
 *
 * <p>Usage: {@code java $STOCKFLIGHT_JAVA_OPTS -Duser.timezone=UTC -cp "$STOCKFLIGHT_JDBC_CLASSPATH"
 * io.stockflight.clients.Session HOST:PORT USER PASSWORD}. Exits 1 if it cannot connect.
 */
public final class Session {
    private Session() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Session HOST:PORT USER PASSWORD");
            System.exit(2);
        }
        try (Connection conn = E2eQuery.connect(args[0], args[1], args[2]);
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            System.out.println("{\"connected\": true}");
            System.out.flush();
            String sql;
            while ((sql = in.readLine()) != null) {
                if (sql.isBlank()) {
                    continue;
                }
                StringBuilder out = new StringBuilder();
                try {
                    E2eQuery.query(conn, sql, out);
                } catch (SQLException e) {
                    out.setLength(0);
                    out.append("{\"error\": ").append(E2eQuery.quote(e.toString())).append("}");
                }
                // One line per statement: the result's own line breaks are only layout.
                System.out.println(out.toString().replace("\n", ""));
                System.out.flush();
            }
        } catch (SQLException e) {
            System.err.println("Session: " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }
}
