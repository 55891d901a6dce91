package io.stockflight.tableau.conformance.run;

import io.stockflight.tableau.conformance.calc.CalcSyntaxException;
import io.stockflight.tableau.conformance.calc.Parser;
import io.stockflight.tableau.conformance.tdvt.TestFile;
import io.stockflight.tableau.conformance.tdvt.Value;
import io.stockflight.tableau.conformance.translate.NotTranslatableException;
import io.stockflight.tableau.conformance.translate.Translation;
import io.stockflight.tableau.conformance.translate.Translator;
import java.sql.SQLException;
import java.util.List;

/** Runs one calculation the way TDVT does: translate, query its distinct values, compare with every expected variant. */
public final class CalcRunner {
    /** The column name Tableau gives a calculation in TDVT's queries. */
    static final String ALIAS = "TEMP(Test)";
    private static final int MAX_ERROR = 600;

    private final Translator translator;
    private final Database database;
    private final String table;

    /** A runner of calculations over {@code table}. */
    public CalcRunner(Translator translator, Database database, String table) {
        this.translator = translator;
        this.database = database;
        this.table = table;
    }

    /** Calculation {@code index} of {@code test}. */
    public Outcome run(TestFile test, int index) {
        String calc = test.calculations().get(index);
        List<TestFile.Expected> expected = test.expected(index);
        Translation translation;
        try {
            translation = translator.translate(Parser.parse(calc));
        } catch (CalcSyntaxException | NotTranslatableException e) {
            return outcome(test, calc, Outcome.Status.NOT_TRANSLATABLE, null, e.getMessage(), List.of(), expected);
        }
        String sql = translator.select(translation, table, ALIAS);
        List<Value> actual;
        try {
            actual = database.values(sql, translation.type());
        } catch (SQLException e) {
            return outcome(test, calc, Outcome.Status.FAILED, sql, "query failed: " + firstLines(e), List.of(), expected);
        }
        if (expected.isEmpty()) {
            return outcome(test, calc, Outcome.Status.FAILED, sql, "no expected file has a result for this calculation",
                actual, expected);
        }
        for (TestFile.Expected e : expected) {
            if (!e.error() && Comparison.matches(actual, e.values())) {
                return new Outcome(test.name(), test.category(), test.family(), calc, Outcome.Status.PASSED, sql, "",
                    Comparison.sorted(actual), e.values(), e.variant());
            }
        }
        return outcome(test, calc, Outcome.Status.FAILED, sql, "the values match no expected variant", actual, expected);
    }

    private static Outcome outcome(TestFile test, String calc, Outcome.Status status, String sql, String detail,
        List<Value> actual, List<TestFile.Expected> expected) {
        TestFile.Expected closest = Comparison.closest(actual, expected);
        return new Outcome(test.name(), test.category(), test.family(), calc, status, sql, detail, Comparison.sorted(actual),
            closest == null ? List.of() : closest.values(), closest == null ? "" : closest.variant());
    }

    /** The error's message (and its causes'), capped: the driver wraps the server's message in a gRPC one. */
    private static String firstLines(Throwable e) {
        StringBuilder out = new StringBuilder();
        for (Throwable t = e; t != null && out.length() < MAX_ERROR; t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && out.indexOf(m) < 0) {
                out.append(out.length() > 0 ? " / " : "").append(m.replace('\n', ' '));
            }
        }
        return out.length() > MAX_ERROR ? out.substring(0, MAX_ERROR) + "..." : out.toString();
    }
}
