package io.stockflight.tableau.conformance.translate;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** The fields a calculation may reference: each column of the table with its Tableau type. */
public final class Schema {
    /** One column: its name as the database spells it, and its type. */
    public record Column(String name, TableauType type) {}

    private final Map<String, Column> exact = new LinkedHashMap<>();
    private final Map<String, Column> folded = new LinkedHashMap<>();

    /** Adds a column. */
    public Schema add(String name, TableauType type) {
        Column column = new Column(name, type);
        exact.put(name, column);
        folded.putIfAbsent(name.toLowerCase(Locale.ROOT), column);
        return this;
    }

    /** The column {@code [field]} refers to: the same name, else the same name in another case; null if none. */
    public Column find(String field) {
        Column column = exact.get(field);
        return column != null ? column : folded.get(field.toLowerCase(Locale.ROOT));
    }

    /** Number of columns. */
    public int size() {
        return exact.size();
    }
}
