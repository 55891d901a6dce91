package io.stockflight.clients;

import java.nio.Buffer;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Collections;

/**
 * Checks that the Arrow Flight SQL JDBC driver is usable from this JVM, without
 * opening any connection:
 *
 * <ol>
 *   <li>a driver registered with {@link DriverManager} accepts a
 *       {@code jdbc:arrow-flight-sql://} URL and it is Arrow's
 *       {@value #EXPECTED_CLASS} (exit 1 otherwise);</li>
 *   <li>{@code java.nio} is open to class-path code, i.e. the JVM runs with
 *       {@code --add-opens=java.base/java.nio=ALL-UNNAMED}, which the driver's Arrow
 *       memory needs to read any result (exit 2 otherwise);</li>
 *   <li>if this driver version carries its shaded Arrow allocator where 18.x
 *       puts it, it allocates and frees one buffer (exit 2 if that fails).</li>
 * </ol>
 *
 * <p>Prints one line with the driver's name and version. Run it as
 * {@code java $STOCKFLIGHT_JAVA_OPTS -cp "$STOCKFLIGHT_JDBC_CLASSPATH" io.stockflight.clients.DriverCheck}.
 */
public final class DriverCheck {
    static final String PROBE_URL = "jdbc:arrow-flight-sql://127.0.0.1:1";
    static final String EXPECTED_CLASS = "org.apache.arrow.driver.jdbc.ArrowFlightJdbcDriver";
    static final String ADD_OPENS = "--add-opens=java.base/java.nio=ALL-UNNAMED";
    /** Where flight-sql-jdbc-driver 18.x relocates Arrow's memory classes. */
    static final String SHADED_ALLOCATOR =
            "org.apache.arrow.driver.jdbc.shaded.org.apache.arrow.memory.RootAllocator";

    private DriverCheck() {}

    public static void main(String[] args) {
        Driver driver = findDriver();
        if (driver == null) {
            System.err.println("DriverCheck: no JDBC driver accepts " + PROBE_URL
                    + " (is flight-sql-jdbc-driver on the classpath?)");
            System.exit(1);
            return;
        }
        String cls = driver.getClass().getName();
        if (!EXPECTED_CLASS.equals(cls)) {
            System.err.println("DriverCheck: " + PROBE_URL + " is taken by " + cls
                    + ", expected " + EXPECTED_CLASS);
            System.exit(1);
            return;
        }

        if (!Buffer.class.getModule().isOpen("java.nio", DriverCheck.class.getModule())) {
            System.err.println("DriverCheck: java.nio is not open to class-path code; the driver's"
                    + " Arrow memory cannot read results. Start java with " + ADD_OPENS
                    + " (STOCKFLIGHT_JAVA_OPTS).");
            System.exit(2);
            return;
        }
        String memory = probeArrowMemory(driver.getClass().getClassLoader());
        if (memory.startsWith("FAILED")) {
            System.err.println("DriverCheck: Arrow memory in the driver " + memory);
            System.exit(2);
            return;
        }

        Package pkg = driver.getClass().getPackage();
        String title = pkg != null ? pkg.getImplementationTitle() : null;
        String version = pkg != null ? pkg.getImplementationVersion() : null;
        System.out.println("DriverCheck: " + (title != null ? title : "Arrow Flight SQL JDBC Driver")
                + " " + (version != null ? version : "?")
                + " (" + cls + ", JDBC " + driver.getMajorVersion() + "." + driver.getMinorVersion()
                + ", Java " + Runtime.version() + ", Arrow memory " + memory + ")");
    }

    private static Driver findDriver() {
        for (Driver d : Collections.list(DriverManager.getDrivers())) {
            try {
                if (d.acceptsURL(PROBE_URL)) {
                    return d;
                }
            } catch (SQLException e) {
                // A driver that cannot even judge the URL is not ours.
            }
        }
        return null;
    }

    /** Allocates one 64-byte buffer with the driver's own (shaded) Arrow allocator. */
    private static String probeArrowMemory(ClassLoader loader) {
        final Class<?> allocatorClass;
        try {
            allocatorClass = Class.forName(SHADED_ALLOCATOR, true, loader);
        } catch (ClassNotFoundException e) {
            return "not probed (no " + SHADED_ALLOCATOR + " in this driver version)";
        } catch (Throwable t) {
            return "FAILED: " + rootCause(t);
        }
        try (AutoCloseable allocator = (AutoCloseable) allocatorClass.getConstructor().newInstance()) {
            Object buf = allocatorClass.getMethod("buffer", long.class).invoke(allocator, 64L);
            ((AutoCloseable) buf).close();
            return "ok";
        } catch (Throwable t) {
            return "FAILED: " + rootCause(t);
        }
    }

    private static String rootCause(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.toString();
    }
}
