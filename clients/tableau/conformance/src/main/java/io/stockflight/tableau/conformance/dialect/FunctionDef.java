package io.stockflight.tableau.conformance.dialect;

import io.stockflight.tableau.conformance.translate.TableauType;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One overload of a dialect function ({@code <function>} or {@code <date-function>}): its SQL
 * formula with {@code %1, %2...} for the arguments, and for date functions the formulas for
 * particular date parts.
 *
 * @param name the Tableau function or operator name, upper case ({@code DATEADD}, {@code +})
 * @param groups the {@code group} attribute's groups ({@code numeric}, {@code aggregate}...)
 * @param returns the result type
 * @param parameters the argument types, in order
 * @param formula the formula for every date part without one of its own; may be null
 * @param partFormulas date part to its formula ({@code <formula part='week'>})
 * @param unaggregated the {@code <unagg-formula>}, or null
 * @param dateFunction whether this is a {@code <date-function>}
 */
public record FunctionDef(
    String name,
    Set<String> groups,
    TableauType returns,
    List<Parameter> parameters,
    String formula,
    Map<String, String> partFormulas,
    String unaggregated,
    boolean dateFunction) {

    /** Whether the function aggregates rows ({@code group='aggregate'}). */
    public boolean isAggregate() {
        return groups.contains("aggregate");
    }

    /** The formula for {@code part} (null for none): its own, else the generic one. */
    public String formulaFor(String part) {
        if (part != null && partFormulas.containsKey(part)) {
            return partFormulas.get(part);
        }
        return formula;
    }

    /** How a failure message names this overload: {@code DATEADD(localstr, int, datetime)}. */
    public String signature() {
        StringBuilder s = new StringBuilder(name).append('(');
        for (int i = 0; i < parameters.size(); i++) {
            s.append(i > 0 ? ", " : "").append(parameters.get(i));
        }
        return s.append(") -> ").append(returns.tddName()).toString();
    }
}
