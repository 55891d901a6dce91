package io.stockflight.tableau.conformance.run;

import io.stockflight.tableau.conformance.tdvt.Value;
import io.stockflight.tableau.conformance.translate.Schema;
import io.stockflight.tableau.conformance.translate.TableauType;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * The server as Tableau's JDBC path sees it: a connection through the Arrow Flight SQL JDBC
 * driver, a table's columns as Tableau types, and a query's values read as the calculation's type.
 */
public final class Database implements AutoCloseable {
    private final Connection connection;

    private Database(Connection connection) {
        this.connection = connection;
    }

    /** Connects with the driver's URL and properties ({@code user}/{@code password} or {@code token}). */
    public static Database connect(String url, Properties properties) throws SQLException {
        return new Database(DriverManager.getConnection(url, properties));
    }

    /** The driver's identifier quote string. */
    public String identifierQuote() throws SQLException {
        return connection.getMetaData().getIdentifierQuoteString();
    }

    /** The columns of {@code table} as Tableau sees them; an error when there is no such table. */
    public Schema schema(String table) throws SQLException {
        Schema schema = new Schema();
        DatabaseMetaData meta = connection.getMetaData();
        try (ResultSet columns = meta.getColumns(null, null, table, null)) {
            while (columns.next()) {
                schema.add(columns.getString("COLUMN_NAME"), tableauType(columns.getInt("DATA_TYPE")));
            }
        }
        if (schema.size() == 0) {
            throw new SQLException("the server has no table " + table + " (or it has no columns)");
        }
        return schema;
    }

    /** How Tableau types a JDBC column; a time of day is a date-time on 30 December 1899. */
    static TableauType tableauType(int jdbcType) {
        return switch (jdbcType) {
            case Types.BOOLEAN, Types.BIT -> TableauType.BOOL;
            case Types.TINYINT, Types.SMALLINT, Types.INTEGER, Types.BIGINT -> TableauType.INT;
            case Types.REAL, Types.FLOAT, Types.DOUBLE, Types.DECIMAL, Types.NUMERIC -> TableauType.REAL;
            case Types.DATE -> TableauType.DATE;
            case Types.TIMESTAMP, Types.TIMESTAMP_WITH_TIMEZONE, Types.TIME, Types.TIME_WITH_TIMEZONE -> TableauType.DATETIME;
            default -> TableauType.STR;
        };
    }

    /** Runs {@code sql} and reads its first column as {@code type}. */
    public List<Value> values(String sql, TableauType type) throws SQLException {
        List<Value> out = new ArrayList<>();
        try (Statement statement = connection.createStatement(); ResultSet rows = statement.executeQuery(sql)) {
            while (rows.next()) {
                out.add(read(rows, type));
            }
        }
        return out;
    }

    private static Value read(ResultSet rows, TableauType type) throws SQLException {
        Value value = switch (type) {
            case BOOL -> {
                boolean b = rows.getBoolean(1);
                yield new Value.Bool(b);
            }
            case INT -> new Value.Num(rows.getLong(1), true);
            case REAL -> new Value.Num(rows.getDouble(1), false);
            case DATE, DATETIME -> temporal(rows.getObject(1), type == TableauType.DATETIME);
            default -> {
                String s = rows.getString(1);
                yield s == null ? new Value.Null() : new Value.Str(s);
            }
        };
        return rows.wasNull() ? new Value.Null() : value;
    }

    private static Value temporal(Object o, boolean hasTime) throws SQLException {
        LocalDateTime t;
        if (o == null) {
            return new Value.Null();
        } else if (o instanceof java.sql.Timestamp ts) {
            t = ts.toLocalDateTime();
        } else if (o instanceof java.sql.Date d) {
            t = d.toLocalDate().atStartOfDay();
        } else if (o instanceof java.sql.Time time) {
            t = Value.TIME_ONLY_DAY.atTime(time.toLocalTime());
        } else if (o instanceof LocalDateTime ldt) {
            t = ldt;
        } else if (o instanceof LocalDate ld) {
            t = ld.atStartOfDay();
        } else if (o instanceof LocalTime lt) {
            t = Value.TIME_ONLY_DAY.atTime(lt);
        } else {
            throw new SQLException("a date column came back as " + o.getClass().getName());
        }
        return hasTime ? new Value.Temporal(t, true) : new Value.Temporal(t.truncatedTo(ChronoUnit.DAYS), false);
    }

    @Override
    public void close() throws SQLException {
        connection.close();
    }
}
