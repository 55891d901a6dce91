package io.stockflight.tableau.conformance.dialect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.stockflight.tableau.conformance.translate.TableauType;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The connector's own dialect.tdd, read as the runner reads it: every formula usable. */
class ConnectorDialectTest {
    private static final Path TDD = Path.of("../connector/dialect.tdd");

    @Test
    void everyFormulaUsesOnlyItsArguments() throws Exception {
        Dialect dialect = DialectLoader.load(TDD);
        Pattern placeholder = Pattern.compile("%(\\d)");
        int overloads = 0;
        for (Map.Entry<String, List<FunctionDef>> e : dialect.functions().entrySet()) {
            for (FunctionDef def : e.getValue()) {
                overloads++;
                List<String> formulas = new java.util.ArrayList<>(def.partFormulas().values());
                if (def.formula() != null) {
                    formulas.add(def.formula());
                }
                assertFalse(formulas.isEmpty(), def.signature() + " has no formula");
                for (String formula : formulas) {
                    Matcher m = placeholder.matcher(formula);
                    while (m.find()) {
                        int n = Integer.parseInt(m.group(1));
                        assertTrue(n >= 1 && n <= def.parameters().size(), def.signature() + " uses %" + n);
                    }
                }
            }
        }
        assertTrue(overloads > 150, overloads + " overloads");
    }

    @Test
    void tableausDateFunctionsAndFormatsAreDefined() throws Exception {
        Dialect dialect = DialectLoader.load(TDD);
        for (String name : List.of("DATEADD", "DATEDIFF", "DATENAME", "DATEPART", "DATETRUNC", "DATEPARSE")) {
            assertFalse(dialect.overloads(name).isEmpty(), name);
            assertTrue(dialect.overloads(name).get(0).dateFunction(), name);
        }
        assertEquals("DATE '%1'", dialect.dateLiteral());
        assertEquals("CAST(NULL AS TIMESTAMP)", dialect.nullByType().get(TableauType.DATETIME));
        assertTrue(dialect.startOfWeekAsNumber());
        assertNotNull(dialect.selectParts().get("Group"));
    }
}
