package io.stockflight.tableau.conformance.report;

import io.stockflight.tableau.conformance.run.Outcome;
import io.stockflight.tableau.conformance.tdvt.Value;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes a run's per-category table ({@code conformance.md}), every failure with its SQL and values
 * ({@code failures.md}) and one line per calculation ({@code outcomes.tsv}).
 */
public final class Report {
    private Report() {}

    /** Writes the three files into {@code dir}. */
    public static void write(Path dir, String source, List<Outcome> outcomes, Tally tally) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("conformance.md"), tables(source, tally), StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("failures.md"), failures(source, outcomes), StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("outcomes.tsv"), outcomes(outcomes), StandardCharsets.UTF_8);
    }

    /** Test, calculation, status, matching variant, SQL and values returned, tab-separated. */
    private static String outcomes(List<Outcome> outcomes) {
        StringBuilder out = new StringBuilder("test\tcalculation\tstatus\tvariant\tsql\tvalues\n");
        for (Outcome o : outcomes) {
            out.append(String.join("\t", o.test(), o.calculation(), o.status().name(), o.variant(),
                o.sql() == null ? "" : o.sql(), values(o.actual()).replace('\t', ' '))).append('\n');
        }
        return out.toString();
    }

    /** The per-category and per-family tables as Markdown. */
    public static String tables(String source, Tally tally) {
        StringBuilder out = new StringBuilder();
        out.append("Calculations of ").append(source).append(", translated with the connector's dialect.tdd and run on ")
            .append("stockflight-server through the Arrow Flight SQL JDBC driver.\n\n");
        out.append(String.format(Locale.ROOT, "**Overall: %d of %d pass (%.1f%%); %d fail, %d not translatable.**%n%n",
            tally.overall().passed(), tally.overall().total(), tally.overall().percent(), tally.overall().failed(),
            tally.overall().notTranslatable()));
        table(out, "category", tally.categories());
        out.append('\n');
        table(out, "function family", tally.families());
        return out.toString();
    }

    private static void table(StringBuilder out, String what, Map<String, Tally.Counts> rows) {
        out.append("| ").append(what).append(" | calculations | passed | failed | not translatable | pass rate |\n");
        out.append("|---|---:|---:|---:|---:|---:|\n");
        rows.forEach((name, c) -> out.append(String.format(Locale.ROOT, "| %s | %d | %d | %d | %d | %.1f%% |%n", name, c.total(),
            c.passed(), c.failed(), c.notTranslatable(), c.percent())));
    }

    private static String failures(String source, List<Outcome> outcomes) {
        StringBuilder out = new StringBuilder("# Calculations that did not pass\n\nFrom ").append(source).append(".\n");
        int count = 0;
        for (Outcome o : outcomes) {
            if (o.status() == Outcome.Status.PASSED) {
                continue;
            }
            count++;
            out.append("\n## ").append(o.test()).append(": `").append(o.calculation()).append("`\n\n");
            out.append("- status: ").append(o.status().name().toLowerCase(Locale.ROOT).replace('_', ' ')).append('\n');
            out.append("- why: ").append(o.detail()).append('\n');
            if (o.sql() != null) {
                out.append("- SQL: `").append(o.sql()).append("`\n");
            }
            if (!o.expected().isEmpty() || !o.variant().isEmpty()) {
                out.append("- expected (").append(o.variant()).append("): ").append(values(o.expected())).append('\n');
            }
            if (o.sql() != null && !o.detail().startsWith("query failed")) {
                out.append("- got: ").append(values(o.actual())).append('\n');
            }
        }
        if (count == 0) {
            out.append("\nNone.\n");
        }
        return out.toString();
    }

    private static String values(List<Value> values) {
        StringBuilder out = new StringBuilder("`");
        for (int i = 0; i < values.size(); i++) {
            out.append(i > 0 ? ", " : "").append(values.get(i).literal());
        }
        return out.append('`').toString();
    }
}
