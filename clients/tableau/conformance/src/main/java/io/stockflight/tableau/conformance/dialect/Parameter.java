package io.stockflight.tableau.conformance.dialect;

import io.stockflight.tableau.conformance.translate.TableauType;

/**
 * One {@code <argument type='...'>} of a dialect function: a type, and whether it must be a literal
 * ({@code localstr}, {@code localint}, {@code localreal}).
 */
public record Parameter(TableauType type, boolean local) {

    /** The parameter a dialect's argument type names ({@code real}, {@code localstr}...). */
    public static Parameter of(String tddType) {
        String name = tddType.trim();
        boolean local = name.startsWith("local");
        return new Parameter(TableauType.of(local ? name.substring("local".length()) : name), local);
    }

    @Override
    public String toString() {
        return (local ? "local" : "") + type.tddName();
    }
}
