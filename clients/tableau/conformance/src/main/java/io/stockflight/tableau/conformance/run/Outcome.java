package io.stockflight.tableau.conformance.run;

import io.stockflight.tableau.conformance.tdvt.Value;
import java.util.List;

/**
 * What happened to one calculation.
 *
 * @param test the TDVT test (setup file) name
 * @param category the test's category
 * @param family the test's function family
 * @param calculation the Tableau calculation
 * @param status passed, failed or not translatable
 * @param sql the SQL it became (null when not translatable)
 * @param detail why it failed: the translation or query error, or which values differ
 * @param actual the values the server returned (empty on error)
 * @param expected the closest expected values (of the best-matching variant)
 * @param variant the expected file those values come from
 */
public record Outcome(
    String test,
    String category,
    String family,
    String calculation,
    Status status,
    String sql,
    String detail,
    List<Value> actual,
    List<Value> expected,
    String variant) {

    /** How a calculation fared. */
    public enum Status {
        /** The values matched one expected variant. */
        PASSED,
        /** The query failed or its values matched no variant. */
        FAILED,
        /** The dialect cannot express the calculation. */
        NOT_TRANSLATABLE
    }
}
