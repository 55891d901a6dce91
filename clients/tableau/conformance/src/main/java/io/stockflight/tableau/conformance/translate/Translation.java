package io.stockflight.tableau.conformance.translate;

/**
 * A calculation as SQL: the expression, its Tableau type, and whether it aggregates (then it is
 * evaluated over the whole table, else once per distinct value).
 */
public record Translation(String sql, TableauType type, boolean aggregate) {}
