package io.stockflight.clients.examples;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Locale;
import java.util.Properties;

/**
 * In-stock rate by region for one department, over JDBC: the smallest useful program against
 * stockflight-server with the Arrow Flight SQL JDBC driver, using nothing but {@code java.sql}.
 *
 * <pre>
 * java --add-opens=java.base/java.nio=ALL-UNNAMED -cp CLASSPATH \
 *     io.stockflight.clients.examples.InStockByRegion \
 *     'jdbc:arrow-flight-sql://127.0.0.1:50051/?useEncryption=false' grocery
 * </pre>
 *
 * <p>User and password come from {@code STOCKFLIGHT_USER} and {@code STOCKFLIGHT_PASSWORD} when
 * set (kept out of the command line), else from the URL's {@code user=} and {@code password=}
 * parameters; a server without {@code auth.users} needs neither. Prints one line per region:
 *
 * <pre>
 * region       rows   in stock   low   out   in-stock rate
 * midwest       112         90     8    10         89.90 %
 * </pre>
 *
 * Exit status: 0 with at least one row, 1 when the department has no rows, 2 on bad usage, 3 on
 * a database error (its message on stderr).
 */
public final class InStockByRegion {
    /**
     * The department level of the roll-up table the batch writes: one row per region x
     * department. The department is a bound parameter ({@code ?}), never pasted into the SQL.
     */
    static final String QUERY = """
            SELECT region, items_tracked, in_stock, low_stock, out_of_stock, in_stock_rate
            FROM availability_by_region_category
            WHERE level = 'department' AND department = ?
            ORDER BY region""";

    private InStockByRegion() {}

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: InStockByRegion JDBC_URL DEPARTMENT\n"
                    + "  e.g. 'jdbc:arrow-flight-sql://127.0.0.1:50051/?useEncryption=false' grocery\n"
                    + "  credentials: STOCKFLIGHT_USER and STOCKFLIGHT_PASSWORD, or user=/password= in the URL");
            System.exit(2);
        }
        try {
            int rows = print(args[0], args[1]);
            if (rows == 0) {
                System.err.println("no rows for department '" + args[1] + "' in the current snapshot");
                System.exit(1);
            }
        } catch (SQLException e) {
            System.err.println("InStockByRegion: " + e.getMessage());
            System.exit(3);
        }
    }

    /** Runs the query for {@code department} and prints the table; returns the rows printed. */
    static int print(String url, String department) throws SQLException {
        Properties props = new Properties();
        String user = System.getenv("STOCKFLIGHT_USER");
        if (user != null) {
            props.setProperty("user", user);
            props.setProperty("password", System.getenv().getOrDefault("STOCKFLIGHT_PASSWORD", ""));
        }
        try (Connection conn = DriverManager.getConnection(url, props);
                PreparedStatement ps = conn.prepareStatement(QUERY)) {
            ps.setString(1, department);
            try (ResultSet rs = ps.executeQuery()) {
                // Locale.ROOT: the same decimal point whatever the JVM's locale, for scripts.
                System.out.printf(Locale.ROOT, "%-12s %6s %10s %5s %5s %15s%n",
                        "region", "rows", "in stock", "low", "out", "in-stock rate");
                int rows = 0;
                while (rs.next()) {
                    double rate = rs.getDouble("in_stock_rate");
                    // NULL when every row of the group is discontinued.
                    String shown = rs.wasNull() ? "n/a" : String.format(Locale.ROOT, "%.2f %%", rate * 100);
                    System.out.printf(Locale.ROOT, "%-12s %6d %10d %5d %5d %15s%n", rs.getString("region"),
                            rs.getLong("items_tracked"), rs.getLong("in_stock"), rs.getLong("low_stock"),
                            rs.getLong("out_of_stock"), shown);
                    rows++;
                }
                return rows;
            }
        }
    }
}
