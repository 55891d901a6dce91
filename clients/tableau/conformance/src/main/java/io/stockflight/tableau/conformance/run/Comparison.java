package io.stockflight.tableau.conformance.run;

import io.stockflight.tableau.conformance.tdvt.TestFile;
import io.stockflight.tableau.conformance.tdvt.Value;
import java.util.ArrayList;
import java.util.List;

/** Compares a query's distinct values with the values of each expected variant. */
final class Comparison {
    private Comparison() {}

    /** Whether {@code actual} and {@code expected} hold the same values (in any order; see {@link Value#same}). */
    static boolean matches(List<Value> actual, List<Value> expected) {
        return differences(actual, expected) == 0;
    }

    /** How many values differ once both lists are sorted: unmatched ones plus the length difference. */
    static int differences(List<Value> actual, List<Value> expected) {
        List<Value> a = sorted(actual);
        List<Value> e = sorted(expected);
        int diff = Math.abs(a.size() - e.size());
        for (int i = 0; i < Math.min(a.size(), e.size()); i++) {
            if (!Value.same(a.get(i), e.get(i))) {
                diff++;
            }
        }
        return diff;
    }

    /** The expected test closest to {@code actual} (fewest differences), or null when there is none. */
    static TestFile.Expected closest(List<Value> actual, List<TestFile.Expected> candidates) {
        TestFile.Expected best = null;
        int bestDiff = Integer.MAX_VALUE;
        for (TestFile.Expected t : candidates) {
            int d = differences(actual, t.values());
            if (d < bestDiff) {
                best = t;
                bestDiff = d;
            }
        }
        return best;
    }

    static List<Value> sorted(List<Value> values) {
        List<Value> out = new ArrayList<>(values);
        out.sort(Value.ORDER);
        return out;
    }
}
