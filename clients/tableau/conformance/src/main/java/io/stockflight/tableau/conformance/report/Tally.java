package io.stockflight.tableau.conformance.report;

import io.stockflight.tableau.conformance.run.Outcome;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/** Outcomes counted overall, per category ({@code date}) and per function family ({@code date.dateadd}). */
public record Tally(Counts overall, Map<String, Counts> categories, Map<String, Counts> families) {

    /** Passed, failed and not-translatable calculations. */
    public record Counts(int passed, int failed, int notTranslatable) {
        /** All calculations counted. */
        public int total() {
            return passed + failed + notTranslatable;
        }

        /** Passed as a share of all, in percent (100 for none). */
        public double percent() {
            return total() == 0 ? 100.0 : 100.0 * passed / total();
        }

        Counts plus(Outcome.Status status) {
            return switch (status) {
                case PASSED -> new Counts(passed + 1, failed, notTranslatable);
                case FAILED -> new Counts(passed, failed + 1, notTranslatable);
                case NOT_TRANSLATABLE -> new Counts(passed, failed, notTranslatable + 1);
            };
        }
    }

    private static final Counts ZERO = new Counts(0, 0, 0);

    /** Counts {@code outcomes}. */
    public static Tally of(List<Outcome> outcomes) {
        Counts overall = ZERO;
        for (Outcome o : outcomes) {
            overall = overall.plus(o.status());
        }
        return new Tally(overall, by(outcomes, Outcome::category), by(outcomes, Outcome::family));
    }

    private static Map<String, Counts> by(List<Outcome> outcomes, Function<Outcome, String> key) {
        Map<String, Counts> out = new TreeMap<>();
        for (Outcome o : outcomes) {
            out.merge(key.apply(o), ZERO.plus(o.status()), (a, b) -> new Counts(a.passed() + b.passed(),
                a.failed() + b.failed(), a.notTranslatable() + b.notTranslatable()));
        }
        return out;
    }

    /** Every count by its baseline key: {@code overall}, {@code category.<c>}, {@code family.<f>}. */
    public Map<String, Counts> byKey() {
        Map<String, Counts> out = new LinkedHashMap<>();
        out.put("overall", overall);
        categories.forEach((k, v) -> out.put("category." + k, v));
        families.forEach((k, v) -> out.put("family." + k, v));
        return out;
    }
}
