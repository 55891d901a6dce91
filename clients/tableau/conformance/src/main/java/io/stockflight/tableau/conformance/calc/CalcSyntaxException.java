package io.stockflight.tableau.conformance.calc;

/** A calculation that is not valid Tableau syntax, with the character position of the fault. */
public final class CalcSyntaxException extends Exception {
    private static final long serialVersionUID = 1L;

    /** A syntax error at {@code position} (0-based) of the calculation. */
    public CalcSyntaxException(String message, int position) {
        super(message + " (at character " + (position + 1) + ")");
    }
}
