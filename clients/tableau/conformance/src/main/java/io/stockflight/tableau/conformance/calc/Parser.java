package io.stockflight.tableau.conformance.calc;

import java.time.LocalDate;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Parses Tableau's calculation language into an {@link Expr}. Precedence, loosest first (Tableau's
 * "Operator precedence"): {@code OR}; {@code AND}; {@code NOT}; comparisons and {@code IN};
 * {@code + -}; {@code * / %}; {@code ^}; negation. Binary operators associate to the left.
 */
public final class Parser {
    private final List<Token> tokens;
    private int index;

    private Parser(List<Token> tokens) {
        this.tokens = tokens;
    }

    /** Parses one calculation. */
    public static Expr parse(String calculation) throws CalcSyntaxException {
        Parser parser = new Parser(Lexer.tokenize(calculation));
        Expr expr = parser.or();
        Token rest = parser.peek();
        if (rest.kind() != Token.Kind.END) {
            throw new CalcSyntaxException("unexpected '" + rest.text() + "' after a complete expression", rest.position());
        }
        return expr;
    }

    private Token peek() {
        return tokens.get(index);
    }

    private Token take() {
        return tokens.get(index++);
    }

    private boolean acceptSymbol(String symbol) {
        if (peek().is(symbol)) {
            index++;
            return true;
        }
        return false;
    }

    private boolean acceptKeyword(String keyword) {
        if (peek().isKeyword(keyword)) {
            index++;
            return true;
        }
        return false;
    }

    private void expectSymbol(String symbol) throws CalcSyntaxException {
        if (!acceptSymbol(symbol)) {
            throw unexpected("'" + symbol + "'");
        }
    }

    private void expectKeyword(String keyword) throws CalcSyntaxException {
        if (!acceptKeyword(keyword)) {
            throw unexpected(keyword);
        }
    }

    private CalcSyntaxException unexpected(String wanted) {
        Token t = peek();
        String found = t.kind() == Token.Kind.END ? "the end" : "'" + t.text() + "'";
        return new CalcSyntaxException("expected " + wanted + ", found " + found, t.position());
    }

    private Expr or() throws CalcSyntaxException {
        Expr left = and();
        while (acceptKeyword("OR")) {
            left = new Expr.Binary("OR", left, and());
        }
        return left;
    }

    private Expr and() throws CalcSyntaxException {
        Expr left = not();
        while (acceptKeyword("AND")) {
            left = new Expr.Binary("AND", left, not());
        }
        return left;
    }

    private Expr not() throws CalcSyntaxException {
        if (acceptKeyword("NOT")) {
            return new Expr.Unary("NOT", not());
        }
        return comparison();
    }

    private static final List<String> COMPARISONS = List.of("=", "==", "!=", "<>", "<", "<=", ">", ">=");

    private Expr comparison() throws CalcSyntaxException {
        Expr left = additive();
        while (true) {
            Token t = peek();
            if (t.kind() == Token.Kind.SYMBOL && COMPARISONS.contains(t.text())) {
                index++;
                left = new Expr.Binary(t.text(), left, additive());
            } else if (acceptKeyword("IN")) {
                expectSymbol("(");
                List<Expr> members = arguments();
                left = new Expr.In(left, members);
            } else {
                return left;
            }
        }
    }

    private Expr additive() throws CalcSyntaxException {
        Expr left = multiplicative();
        while (peek().is("+") || peek().is("-")) {
            String op = take().text();
            left = new Expr.Binary(op, left, multiplicative());
        }
        return left;
    }

    private Expr multiplicative() throws CalcSyntaxException {
        Expr left = power();
        while (peek().is("*") || peek().is("/") || peek().is("%")) {
            String op = take().text();
            left = new Expr.Binary(op, left, power());
        }
        return left;
    }

    private Expr power() throws CalcSyntaxException {
        Expr left = negation();
        while (acceptSymbol("^")) {
            left = new Expr.Binary("^", left, negation());
        }
        return left;
    }

    private Expr negation() throws CalcSyntaxException {
        if (acceptSymbol("-")) {
            Expr operand = negation();
            if (operand instanceof Expr.Number n && !n.text().startsWith("-")) {
                return new Expr.Number("-" + n.text(), n.integral());
            }
            return new Expr.Unary("-", operand);
        }
        if (acceptSymbol("+")) {
            return negation();
        }
        return primary();
    }

    private Expr primary() throws CalcSyntaxException {
        Token t = take();
        switch (t.kind()) {
            case NUMBER:
                return new Expr.Number(t.text(), !t.text().contains(".") && !t.text().toLowerCase(Locale.ROOT).contains("e"));
            case STRING:
                return new Expr.Str(t.text());
            case DATE:
                return dateLiteral(t);
            case FIELD:
                return new Expr.Field(fieldName(t));
            case IDENT:
                return word(t);
            case SYMBOL:
                if (t.is("(")) {
                    Expr inner = or();
                    expectSymbol(")");
                    return inner;
                }
                if (t.is("{")) {
                    return levelOfDetail(t);
                }
                break;
            default:
                break;
        }
        index--;
        throw unexpected("a value");
    }

    /** {@code [table].[field]} refers to the field: the runner's calculations use one table. */
    private String fieldName(Token first) {
        String name = first.text();
        while (peek().is(".") && tokens.get(index + 1).kind() == Token.Kind.FIELD) {
            index++;
            name = take().text();
        }
        return name;
    }

    private Expr word(Token t) throws CalcSyntaxException {
        String upper = t.text().toUpperCase(Locale.ROOT);
        switch (upper) {
            case "TRUE":
                return new Expr.Bool(true);
            case "FALSE":
                return new Expr.Bool(false);
            case "NULL":
                return new Expr.Null();
            case "IF":
                return ifExpression();
            case "CASE":
                return caseExpression();
            default:
                break;
        }
        if (acceptSymbol("(")) {
            return new Expr.Call(upper, arguments());
        }
        if (KEYWORDS.contains(upper)) {
            throw new CalcSyntaxException("unexpected keyword " + upper, t.position());
        }
        // Tableau accepts a field whose name is one word without brackets.
        return new Expr.Field(t.text());
    }

    private static final Set<String> KEYWORDS = Set.of("IF", "THEN", "ELSEIF", "ELSE", "END", "CASE", "WHEN", "AND", "OR",
        "NOT", "IN", "TRUE", "FALSE", "NULL");

    /** Arguments after an opening parenthesis, through the closing one. */
    private List<Expr> arguments() throws CalcSyntaxException {
        List<Expr> args = new ArrayList<>();
        if (acceptSymbol(")")) {
            return args;
        }
        do {
            args.add(or());
        } while (acceptSymbol(","));
        expectSymbol(")");
        return args;
    }

    private Expr ifExpression() throws CalcSyntaxException {
        List<Expr> conditions = new ArrayList<>();
        List<Expr> results = new ArrayList<>();
        do {
            conditions.add(or());
            expectKeyword("THEN");
            results.add(or());
        } while (acceptKeyword("ELSEIF"));
        Expr otherwise = acceptKeyword("ELSE") ? or() : null;
        expectKeyword("END");
        return new Expr.If(conditions, results, otherwise);
    }

    private Expr caseExpression() throws CalcSyntaxException {
        Expr subject = or();
        List<Expr> whens = new ArrayList<>();
        List<Expr> results = new ArrayList<>();
        expectKeyword("WHEN");
        do {
            whens.add(or());
            expectKeyword("THEN");
            results.add(or());
        } while (acceptKeyword("WHEN"));
        Expr otherwise = acceptKeyword("ELSE") ? or() : null;
        expectKeyword("END");
        return new Expr.Case(subject, whens, results, otherwise);
    }

    /** Skips a balanced {@code { ... }}: level-of-detail expressions are recognised, not translated. */
    private Expr levelOfDetail(Token open) throws CalcSyntaxException {
        String keyword = peek().kind() == Token.Kind.IDENT ? peek().text().toUpperCase(Locale.ROOT) : "";
        int depth = 1;
        while (depth > 0) {
            Token t = take();
            if (t.kind() == Token.Kind.END) {
                throw new CalcSyntaxException("unterminated { level of detail expression", open.position());
            }
            if (t.is("{")) {
                depth++;
            } else if (t.is("}")) {
                depth--;
            }
        }
        return new Expr.LevelOfDetail(keyword);
    }

    private static final DateTimeFormatter US_DATE = DateTimeFormatter.ofPattern("M/d/yyyy", Locale.ROOT);
    private static final DateTimeFormatter[] TIMES = {
        DateTimeFormatter.ofPattern("H:mm:ss[.SSSSSS][.SSS][.S]", Locale.ROOT),
        DateTimeFormatter.ofPattern("H:mm", Locale.ROOT),
        DateTimeFormatter.ofPattern("h:mm:ss a", Locale.ROOT),
        DateTimeFormatter.ofPattern("h:mm a", Locale.ROOT),
    };
    private static final DateTimeFormatter[] DATES = {
        DateTimeFormatter.ISO_LOCAL_DATE,
        DateTimeFormatter.ofPattern("yyyy/M/d", Locale.ROOT),
        US_DATE,
        DateTimeFormatter.ofPattern("MMMM d, yyyy", Locale.ENGLISH),
        DateTimeFormatter.ofPattern("MMM d, yyyy", Locale.ENGLISH),
        DateTimeFormatter.ofPattern("d MMMM yyyy", Locale.ENGLISH),
    };

    /**
     * A {@code #...#} literal: ISO ({@code #2004-04-15#}, {@code #2004-04-15 13:45:00#}), US
     * month/day/year ({@code #4/15/2004#}), month names, with an optional time (24 hours or AM/PM).
     */
    static Expr dateLiteral(Token t) throws CalcSyntaxException {
        String text = t.text().replace('T', ' ').trim();
        // The date is a prefix of the text ending at its end or at a space; the rest is the time.
        for (int split = text.length(); split > 0; split = text.lastIndexOf(' ', split - 1)) {
            LocalDate date = date(text.substring(0, split).trim());
            if (date == null) {
                continue;
            }
            String rest = text.substring(split).trim();
            if (rest.isEmpty()) {
                return new Expr.DateLiteral(date.atStartOfDay(), false);
            }
            LocalTime time = time(rest.toUpperCase(Locale.ROOT));
            if (time != null) {
                return new Expr.DateLiteral(date.atTime(time), true);
            }
        }
        throw new CalcSyntaxException("'#" + t.text() + "#' is not a date Tableau reads", t.position());
    }

    private static LocalDate date(String text) {
        for (DateTimeFormatter f : DATES) {
            try {
                return LocalDate.parse(text, f);
            } catch (DateTimeParseException e) {
                // try the next layout
            }
        }
        return null;
    }

    private static LocalTime time(String text) {
        for (DateTimeFormatter f : TIMES) {
            try {
                return LocalTime.parse(text, f);
            } catch (DateTimeParseException e) {
                // try the next layout
            }
        }
        return null;
    }

}
