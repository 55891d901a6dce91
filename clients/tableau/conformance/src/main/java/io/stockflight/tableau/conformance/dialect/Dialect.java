package io.stockflight.tableau.conformance.dialect;

import io.stockflight.tableau.conformance.translate.TableauType;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the runner reads from a connector's {@code dialect.tdd}: its function map and the
 * {@code sql-format} settings that shape literals, NULLs, dates and the SELECT statement.
 *
 * @param name the dialect's {@code name}
 * @param functions every function and date function, by upper-case name, in file order
 * @param dateParts per date function ("" for the default group), Tableau date part to the value
 *     its formulas' {@code %1} becomes
 * @param formatTrue the boolean literal true
 * @param formatFalse the boolean literal false
 * @param nullByType a typed NULL per type ({@code <format-null>}); plain {@code NULL} otherwise
 * @param dateLiteral the date literal formula, {@code %1} being the date in {@code dateFormat}
 * @param dateFormat the date literal's layout (ICU, as {@code yyyy-MM-dd})
 * @param datetimeLiteral the date-time literal formula
 * @param datetimeFormat the date-time literal's layout
 * @param startOfWeekOffset added to Tableau's start-of-week number (Sunday 0)
 * @param startOfWeekAsNumber whether the start of week reaches formulas as a number (else as a
 *     string literal such as {@code 'monday'})
 * @param selectParts the {@code format-select} parts by name ({@code Select}, {@code From}...)
 * @param extendedStringEscapes whether string literals also escape backslashes and control
 *     characters ({@code format-string-literal value='Extended'})
 */
public record Dialect(
    String name,
    Map<String, List<FunctionDef>> functions,
    Map<String, Map<String, String>> dateParts,
    String formatTrue,
    String formatFalse,
    Map<TableauType, String> nullByType,
    String dateLiteral,
    String dateFormat,
    String datetimeLiteral,
    String datetimeFormat,
    int startOfWeekOffset,
    boolean startOfWeekAsNumber,
    Map<String, String> selectParts,
    boolean extendedStringEscapes) {

    /** The overloads of {@code name} (any case), in file order; empty when the dialect has none. */
    public List<FunctionDef> overloads(String name) {
        return functions.getOrDefault(name.toUpperCase(Locale.ROOT), List.of());
    }

    /** What {@code %1} becomes for {@code part} in date function {@code function}'s formulas. */
    public String datePartValue(String function, String part) {
        Map<String, String> own = dateParts.get(function);
        if (own != null && own.containsKey(part)) {
            return own.get(part);
        }
        return dateParts.getOrDefault("", Map.of()).getOrDefault(part, part);
    }

    /** A SELECT part's template ({@code SELECT %1}), or the SQL-92 one when the dialect has none. */
    public String selectPart(String part, String sql92) {
        return selectParts.getOrDefault(part, sql92);
    }
}
