package io.stockflight.tableau.conformance;

import io.stockflight.tableau.conformance.dialect.Dialect;
import io.stockflight.tableau.conformance.dialect.DialectLoader;
import io.stockflight.tableau.conformance.report.Baseline;
import io.stockflight.tableau.conformance.report.Report;
import io.stockflight.tableau.conformance.report.Tally;
import io.stockflight.tableau.conformance.run.CalcRunner;
import io.stockflight.tableau.conformance.run.ConnectorScripts;
import io.stockflight.tableau.conformance.run.Database;
import io.stockflight.tableau.conformance.run.Outcome;
import io.stockflight.tableau.conformance.tdvt.TestFile;
import io.stockflight.tableau.conformance.tdvt.TestSuite;
import io.stockflight.tableau.conformance.translate.Translator;
import java.io.IOException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * The TDVT-style conformance run: exit 0 when it ran (and held the baseline), 1 when a pass rate
 * fell below the baseline, 2 when it could not run (bad arguments, files, server).
 */
public final class Main {
    private Main() {}

    /** Runs the conformance suite; see {@link Options#USAGE}. */
    public static void main(String[] args) {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println("conformance: " + e.getMessage());
            }
            System.err.print(Options.USAGE);
            System.exit(e.getMessage().isEmpty() ? 0 : 2);
            return;
        }
        try {
            System.exit(run(options));
        } catch (IOException | SQLException e) {
            System.err.println("conformance: " + e.getMessage());
            System.exit(2);
        }
    }

    private static int run(Options o) throws IOException, SQLException {
        Dialect dialect = DialectLoader.load(o.dialect());
        List<TestFile> tests = TestSuite.load(o.tests(), o.only());
        List<Outcome> outcomes = new ArrayList<>();
        long started = System.nanoTime();
        String url = o.url();
        Properties properties = o.credentials();
        if (o.connector() != null) {
            ConnectorScripts scripts = ConnectorScripts.run(o.connector(), o.attributes());
            url = scripts.url();
            properties = scripts.properties();
            System.out.println("connecting as the connector does: " + url + " with properties " + properties.stringPropertyNames());
        }
        try (Database db = Database.connect(url, properties)) {
            Translator translator = new Translator(dialect, db.schema(o.table()), db.identifierQuote());
            CalcRunner runner = new CalcRunner(translator, db, o.table());
            for (TestFile test : tests) {
                for (int i = 0; i < test.calculations().size(); i++) {
                    outcomes.add(runner.run(test, i));
                }
            }
        }
        Tally tally = Tally.of(outcomes);
        Report.write(o.out(), o.source(), outcomes, tally);
        System.out.print(Report.tables(o.source(), tally));
        System.out.printf(Locale.ROOT, "%n%d calculations of %d tests in %.1f s; reports in %s%n", outcomes.size(), tests.size(),
            (System.nanoTime() - started) / 1e9, o.out().toAbsolutePath());
        if (o.record() != null) {
            Baseline.write(o.record(), tally, o.source());
            System.out.println("recorded the pass rates in " + o.record());
        }
        if (o.baseline() != null) {
            List<String> regressions = Baseline.regressions(o.baseline(), tally);
            if (!regressions.isEmpty()) {
                System.out.println("\nPass rates below the baseline " + o.baseline() + ":");
                regressions.forEach(r -> System.out.println("  " + r));
                return 1;
            }
            System.out.println("every pass rate holds the baseline " + o.baseline());
        }
        return 0;
    }
}
