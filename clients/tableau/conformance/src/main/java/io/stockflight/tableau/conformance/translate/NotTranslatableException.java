package io.stockflight.tableau.conformance.translate;

/** A calculation the dialect cannot express: an unknown function, no matching overload, mixed aggregation... */
public final class NotTranslatableException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Why the calculation cannot be translated. */
    public NotTranslatableException(String reason) {
        super(reason);
    }
}
