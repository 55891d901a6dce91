package io.stockflight.tableau.conformance.calc;

/** One lexical token of a Tableau calculation. */
public record Token(Kind kind, String text, int position) {

    /** What a token is. */
    public enum Kind {
        /** A number, as written ({@code 12}, {@code .3}, {@code 1e5}). */
        NUMBER,
        /** A quoted string; {@code text} is its value, quotes removed. */
        STRING,
        /** A {@code #...#} date literal; {@code text} is what is between the hashes. */
        DATE,
        /** A {@code [field]} reference; {@code text} is the name. */
        FIELD,
        /** A name: a function, keyword or boolean/null literal. */
        IDENT,
        /** An operator or punctuation: {@code + - * / % ^ = == != <> < <= > >= ( ) , { } : .}. */
        SYMBOL,
        /** The end of the calculation. */
        END
    }

    /** Whether this is the symbol {@code symbol}. */
    public boolean is(String symbol) {
        return kind == Kind.SYMBOL && text.equals(symbol);
    }

    /** Whether this is the keyword {@code keyword} (any case). */
    public boolean isKeyword(String keyword) {
        return kind == Kind.IDENT && text.equalsIgnoreCase(keyword);
    }
}
