package io.stockflight.tableau.conformance.calc;

import java.time.LocalDateTime;
import java.util.List;

/** A parsed Tableau calculation. */
public sealed interface Expr {

    /** A number literal as written; {@code integral} when it has no fraction or exponent. */
    record Number(String text, boolean integral) implements Expr {}

    /** A string literal. */
    record Str(String value) implements Expr {}

    /** {@code TRUE} or {@code FALSE}. */
    record Bool(boolean value) implements Expr {}

    /** {@code NULL}. */
    record Null() implements Expr {}

    /** A {@code #...#} literal: a date, or a date and time when {@code hasTime}. */
    record DateLiteral(LocalDateTime value, boolean hasTime) implements Expr {}

    /** A {@code [field]} reference. */
    record Field(String name) implements Expr {}

    /** A function call; {@code name} in upper case. */
    record Call(String name, List<Expr> args) implements Expr {}

    /** A prefix operator: {@code -} or {@code NOT}. */
    record Unary(String op, Expr operand) implements Expr {}

    /**
     * A binary operator as written, normalised to upper case for words: {@code + - * / % ^ = ==
     * != <> < <= > >= AND OR}.
     */
    record Binary(String op, Expr left, Expr right) implements Expr {}

    /** {@code value IN (a, b, ...)}. */
    record In(Expr value, List<Expr> members) implements Expr {}

    /** {@code IF c1 THEN r1 ELSEIF c2 THEN r2 ... [ELSE e] END}; {@code otherwise} may be null. */
    record If(List<Expr> conditions, List<Expr> results, Expr otherwise) implements Expr {}

    /** {@code CASE subject WHEN w1 THEN r1 ... [ELSE e] END}; {@code otherwise} may be null. */
    record Case(Expr subject, List<Expr> whens, List<Expr> results, Expr otherwise) implements Expr {}

    /** A level-of-detail expression ({@code {FIXED ...: ...}}), kept as text. */
    record LevelOfDetail(String keyword) implements Expr {}
}
