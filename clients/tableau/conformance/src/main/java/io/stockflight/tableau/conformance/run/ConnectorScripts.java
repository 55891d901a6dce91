package io.stockflight.tableau.conformance.run;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import org.mozilla.javascript.Context;
import org.mozilla.javascript.Function;
import org.mozilla.javascript.NativeArray;
import org.mozilla.javascript.NativeObject;
import org.mozilla.javascript.Scriptable;
import org.mozilla.javascript.ScriptableObject;

/**
 * The connector's {@code connectionBuilder.js} and {@code connectionProperties.js}, run the way
 * Tableau runs them: each file is a function of the connection attributes (the dialog's fields),
 * with a {@code connectionHelper} naming the standard attributes. The runner connects with what
 * they return, so a connector whose URL or properties the driver rejects fails the run.
 *
 * @param url the JDBC URL the builder returned
 * @param properties the driver properties the properties script returned
 */
public record ConnectorScripts(String url, Properties properties) {

    /** Tableau's names for the standard connection attributes (connector SDK, "Connection Helper"). */
    private static final Map<String, String> HELPER = Map.of(
        "attributeServer", "server",
        "attributePort", "port",
        "attributeSSLMode", "sslmode",
        "attributeUsername", "username",
        "attributePassword", "password",
        "attributeAuthentication", "authentication",
        "attributeDatabase", "dbname");

    /** Runs both scripts of the connector in {@code dir} on {@code attributes}. */
    public static ConnectorScripts run(Path dir, Map<String, String> attributes) throws IOException {
        Context cx = Context.enter();
        try {
            cx.setLanguageVersion(Context.VERSION_ES6);
            ScriptableObject scope = cx.initSafeStandardObjects();
            Scriptable helper = cx.newObject(scope);
            HELPER.forEach((k, v) -> ScriptableObject.putProperty(helper, k, v));
            ScriptableObject.putProperty(scope, "connectionHelper", helper);
            Scriptable attr = cx.newObject(scope);
            attributes.forEach((k, v) -> ScriptableObject.putProperty(attr, k, v));

            Object built = call(cx, scope, dir.resolve("connectionBuilder.js"), attr);
            if (!(built instanceof NativeArray parts) || parts.isEmpty()) {
                throw new IOException("connectionBuilder.js did not return an array holding the URL");
            }
            Object propsResult = call(cx, scope, dir.resolve("connectionProperties.js"), attr);
            if (!(propsResult instanceof NativeObject props)) {
                throw new IOException("connectionProperties.js did not return an object of properties");
            }
            Properties properties = new Properties();
            for (Object key : props.keySet()) {
                Object value = props.get(key);
                if (value != null && !(value instanceof org.mozilla.javascript.Undefined)) {
                    properties.setProperty(key.toString(), Context.toString(value));
                }
            }
            return new ConnectorScripts(Context.toString(parts.get(0)), properties);
        } finally {
            Context.exit();
        }
    }

    private static Object call(Context cx, Scriptable scope, Path script, Scriptable attr) throws IOException {
        String source = Files.readString(script, StandardCharsets.UTF_8);
        Object fn;
        try {
            fn = cx.evaluateString(scope, source, script.getFileName().toString(), 1, null);
        } catch (RuntimeException e) {
            throw new IOException(script + ": " + e.getMessage(), e);
        }
        if (!(fn instanceof Function function)) {
            throw new IOException(script + " is not a function expression, as Tableau expects");
        }
        return function.call(cx, scope, scope, new Object[] {attr});
    }
}
