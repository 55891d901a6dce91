package io.stockflight.tableau.conformance.translate;

import java.util.Locale;

/** Tableau's data types, as a dialect's {@code return-type} and {@code argument type} name them. */
public enum TableauType {
    /** Boolean. */
    BOOL,
    /** Integer. */
    INT,
    /** Floating-point number. */
    REAL,
    /** String. */
    STR,
    /** Date without a time. */
    DATE,
    /** Date and time. */
    DATETIME,
    /** Geometry (not used by the runner). */
    SPATIAL,
    /** The type of a bare {@code NULL}: fits any parameter. */
    NULL;

    /** The type a dialect names {@code name} ({@code int}, {@code datetime}...). */
    public static TableauType of(String name) {
        return valueOf(name.trim().toUpperCase(Locale.ROOT));
    }

    /** The dialect's name for this type. */
    public String tddName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Whether values of this type are numbers. */
    public boolean isNumeric() {
        return this == INT || this == REAL;
    }

    /** Whether values of this type are dates or date-times. */
    public boolean isTemporal() {
        return this == DATE || this == DATETIME;
    }
}
