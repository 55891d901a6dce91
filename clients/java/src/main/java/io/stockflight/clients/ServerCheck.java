package io.stockflight.clients;

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

/**
 * Talks to a running stockflight-server through the Arrow Flight SQL JDBC driver the way a BI
 * tool does, and prints what it saw, one fact per line, for a test to compare with the data it
 * published:
 *
 * <pre>
 * AUTH_REFUSED &lt;message&gt;               a wrong password is refused
 * CATALOG &lt;name&gt;                        DatabaseMetaData.getCatalogs
 * SCHEMA &lt;catalog&gt; &lt;schema&gt;             getSchemas
 * TABLE &lt;schema&gt; &lt;table&gt; &lt;type&gt;        getTables
 * COLUMN &lt;table&gt; &lt;column&gt; &lt;type name&gt;  getColumns
 * TYPEINFO &lt;count&gt;                      getTypeInfo
 * PK &lt;table&gt; &lt;column&gt;                  getPrimaryKeys
 * VALUE &lt;column&gt; &lt;java class&gt; &lt;value&gt;  every column of one row, read by type
 * PREPARED_COUNT &lt;n&gt;                    a PreparedStatement with a parameter
 * </pre>
 *
 * Usage: {@code java $STOCKFLIGHT_JAVA_OPTS -Duser.timezone=UTC -cp "$STOCKFLIGHT_JDBC_CLASSPATH"
 * io.stockflight.clients.ServerCheck HOST:PORT USER PASSWORD}. Exits 1 on any failure.
 */
public final class ServerCheck {
    private ServerCheck() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: ServerCheck HOST:PORT USER PASSWORD");
            System.exit(2);
        }
        String url = "jdbc:arrow-flight-sql://" + args[0] + "/?useEncryption=false";
        try {
            checkWrongPassword(url, args[1]);
            try (Connection conn = DriverManager.getConnection(url, credentials(args[1], args[2]))) {
                metadata(conn.getMetaData());
                everyType(conn);
                prepared(conn);
            }
        } catch (SQLException e) {
            System.err.println("ServerCheck: " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }

    private static Properties credentials(String user, String password) {
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        return props;
    }

    private static void checkWrongPassword(String url, String user) {
        try (Connection conn = DriverManager.getConnection(url, credentials(user, "definitely-wrong"));
                Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT 1")) {
            System.out.println("AUTH_ACCEPTED");
        } catch (SQLException e) {
            System.out.println("AUTH_REFUSED " + e.getMessage().replace('\n', ' '));
        }
    }

    private static void metadata(DatabaseMetaData md) throws SQLException {
        try (ResultSet rs = md.getCatalogs()) {
            while (rs.next()) {
                System.out.println("CATALOG " + rs.getString("TABLE_CAT"));
            }
        }
        try (ResultSet rs = md.getSchemas()) {
            while (rs.next()) {
                System.out.println("SCHEMA " + rs.getString("TABLE_CATALOG") + " " + rs.getString("TABLE_SCHEM"));
            }
        }
        try (ResultSet rs = md.getTables(null, null, "%", null)) {
            while (rs.next()) {
                System.out.println("TABLE " + rs.getString("TABLE_SCHEM") + " " + rs.getString("TABLE_NAME") + " "
                        + rs.getString("TABLE_TYPE"));
            }
        }
        try (ResultSet rs = md.getColumns(null, "public", "availability_snapshot", "%")) {
            while (rs.next()) {
                System.out.println("COLUMN " + rs.getString("TABLE_NAME") + " " + rs.getString("COLUMN_NAME") + " "
                        + rs.getString("TYPE_NAME"));
            }
        }
        int types = 0;
        try (ResultSet rs = md.getTypeInfo()) {
            while (rs.next()) {
                types++;
            }
        }
        System.out.println("TYPEINFO " + types);
        try (ResultSet rs = md.getPrimaryKeys(null, null, "items")) {
            while (rs.next()) {
                System.out.println("PK " + rs.getString("TABLE_NAME") + " " + rs.getString("COLUMN_NAME"));
            }
        }
    }

    private static void everyType(Connection conn) throws SQLException {
        String sql = "SELECT item_id, node_id, available_qty, reserved_qty, in_stock, as_of, updated_at, region,"
                + " CAST(available_qty AS DOUBLE) AS qty_double FROM availability_snapshot"
                + " WHERE item_id = 'sku-0001' AND node_id = 'node-002'";
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            ResultSetMetaData meta = rs.getMetaData();
            if (!rs.next()) {
                throw new SQLException("no row for sku-0001 at node-002");
            }
            for (int i = 1; i <= meta.getColumnCount(); i++) {
                Object value = rs.getObject(i);
                String typed;
                switch (meta.getColumnType(i)) {
                    case java.sql.Types.BIGINT -> typed = Long.toString(rs.getLong(i));
                    case java.sql.Types.INTEGER -> typed = Integer.toString(rs.getInt(i));
                    case java.sql.Types.BOOLEAN, java.sql.Types.BIT -> typed = Boolean.toString(rs.getBoolean(i));
                    case java.sql.Types.DOUBLE -> typed = Double.toString(rs.getDouble(i));
                    case java.sql.Types.DATE -> typed = rs.getDate(i).toString();
                    case java.sql.Types.TIMESTAMP -> typed = rs.getTimestamp(i).toString();
                    default -> typed = rs.getString(i);
                }
                System.out.println("VALUE " + meta.getColumnName(i) + " "
                        + (value == null ? "null" : value.getClass().getSimpleName()) + " " + typed);
            }
        }
    }

    private static void prepared(Connection conn) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement("SELECT count(*) AS n FROM items WHERE department = ?")) {
            ps.setString(1, "toys");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                System.out.println("PREPARED_COUNT " + rs.getLong(1));
            }
        }
    }
}
