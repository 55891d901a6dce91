package io.stockflight.tableau.conformance.translate;

import io.stockflight.tableau.conformance.calc.Expr;
import io.stockflight.tableau.conformance.dialect.Dialect;
import io.stockflight.tableau.conformance.dialect.FunctionDef;
import io.stockflight.tableau.conformance.dialect.Parameter;
import java.time.DayOfWeek;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns a parsed Tableau calculation into SQL using only what a dialect ({@code .tdd}) defines:
 * operators and functions become the formula of the best-matching overload, literals follow the
 * dialect's literal formats, IF and CASE become SQL CASE.
 *
 * <p>Overloads are chosen as Tableau chooses them: every argument must fit its parameter, either
 * exactly or by widening ({@code int} to {@code real}, {@code date} to {@code datetime}, a bare
 * NULL to anything); the overload needing the fewest widenings wins, the first in the file on a
 * tie. {@code local} parameters take only literals. A widened argument, and an IF or CASE
 * branch of a narrower type than the whole, is converted explicitly with the dialect's own
 * {@code FLOAT} or {@code DATETIME} formula, as Tableau converts it (the SQL then never depends
 * on how the database types a CASE of mixed branches). A date function's first argument is the date
 * part; its optional start of week (a day name) reaches the formula as a number, Sunday 0 plus
 * the dialect's offset. When a date function overload has no formula for the part asked, the
 * overload without the start of week is used, as in Tableau.
 */
public final class Translator {
    /** Tableau's date parts (tdd_latest.xsd {@code DatePart-ST}). */
    private static final Set<String> DATE_PARTS = Set.of("year", "quarter", "month", "week", "weekday", "dayofyear",
        "day", "hour", "minute", "second", "iso-year", "iso-quarter", "iso-week", "iso-weekday");
    /** Date functions whose first argument is not a date part. */
    private static final Set<String> NO_DATE_PART = Set.of("DATEPARSE", "DATEFORMAT");
    private static final Pattern PLACEHOLDER = Pattern.compile("%(\\d)");

    private final Dialect dialect;
    private final Schema schema;
    private final String quote;

    /** A translator for calculations over {@code schema}, quoting identifiers with {@code identifierQuote}. */
    public Translator(Dialect dialect, Schema schema, String identifierQuote) {
        this.dialect = dialect;
        this.schema = schema;
        this.quote = identifierQuote == null || identifierQuote.isBlank() ? "\"" : identifierQuote.trim();
    }

    /** The calculation as SQL. */
    public Translation translate(Expr calculation) throws NotTranslatableException {
        Typed t = expr(calculation);
        return new Translation(t.type() == TableauType.NULL ? "NULL" : t.sql(), t.type(), t.level() == Level.AGGREGATE);
    }

    /**
     * The query Tableau sends for a calculation's distinct values, built from the dialect's
     * {@code format-select} parts: grouped by the calculation, or one row when it aggregates.
     */
    public String select(Translation calculation, String table, String alias) {
        String select = dialect.selectPart("Select", "SELECT %1").replace("%1", calculation.sql() + " AS " + identifier(alias));
        String from = dialect.selectPart("From", "FROM %1").replace("%1", identifier(table));
        if (calculation.aggregate()) {
            return select + " " + from;
        }
        return select + " " + from + " " + dialect.selectPart("Group", "GROUP BY %1").replace("%1", "1");
    }

    /** {@code name} as a quoted identifier. */
    public String identifier(String name) {
        return quote + name.replace(quote, quote + quote) + quote;
    }

    /** Where an expression is evaluated: on no field, per row, or over rows. */
    enum Level {
        CONSTANT, ROW, AGGREGATE
    }

    /** A translated sub-expression; {@code literal} is set for literals (local parameters take only those). */
    record Typed(String sql, TableauType type, Level level, Expr literal) {}

    private Typed expr(Expr e) throws NotTranslatableException {
        if (e instanceof Expr.Number n) {
            return number(n);
        } else if (e instanceof Expr.Str s) {
            return new Typed(stringLiteral(s.value()), TableauType.STR, Level.CONSTANT, s);
        } else if (e instanceof Expr.Bool b) {
            return new Typed(b.value() ? dialect.formatTrue() : dialect.formatFalse(), TableauType.BOOL, Level.CONSTANT, b);
        } else if (e instanceof Expr.Null n) {
            return new Typed("NULL", TableauType.NULL, Level.CONSTANT, n);
        } else if (e instanceof Expr.DateLiteral d) {
            return dateLiteral(d);
        } else if (e instanceof Expr.Field f) {
            Schema.Column column = schema.find(f.name());
            if (column == null) {
                throw new NotTranslatableException("no field [" + f.name() + "] in the table");
            }
            return new Typed(identifier(column.name()), column.type(), Level.ROW, null);
        } else if (e instanceof Expr.Call c) {
            return call(c.name(), c.args());
        } else if (e instanceof Expr.Unary u) {
            return call(u.op().equals("NOT") ? "!" : "-", List.of(u.operand()));
        } else if (e instanceof Expr.Binary b) {
            return call(operatorName(b.op()), List.of(b.left(), b.right()));
        } else if (e instanceof Expr.In in) {
            return in(in);
        } else if (e instanceof Expr.If i) {
            return conditional(null, i.conditions(), i.results(), i.otherwise());
        } else if (e instanceof Expr.Case c) {
            return conditional(c.subject(), c.whens(), c.results(), c.otherwise());
        } else if (e instanceof Expr.LevelOfDetail lod) {
            throw new NotTranslatableException("level of detail expressions ({" + lod.keyword()
                + " ...}) are computed by Tableau's query pipeline, not by a dialect formula");
        }
        throw new IllegalStateException("unknown expression " + e);
    }

    /** The dialect's name for an operator: {@code =} is {@code ==}, {@code AND} is {@code &&}... */
    private static String operatorName(String op) {
        return switch (op) {
            case "=", "==" -> "==";
            case "<>", "!=" -> "!=";
            case "^" -> "^^";
            case "AND" -> "&&";
            case "OR" -> "||";
            default -> op;
        };
    }

    private static Typed number(Expr.Number n) {
        String text = n.text();
        boolean negative = text.startsWith("-");
        String digits = negative ? text.substring(1) : text;
        if (digits.startsWith(".")) {
            digits = "0" + digits;
        }
        if (digits.endsWith(".")) {
            digits = digits + "0";
        }
        boolean integral = n.integral() && fitsLong(digits);
        String sql = negative ? "(-" + digits + ")" : digits;
        return new Typed(sql, integral ? TableauType.INT : TableauType.REAL, Level.CONSTANT, n);
    }

    private static boolean fitsLong(String digits) {
        try {
            Long.parseLong(digits);
            return true;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private String stringLiteral(String value) {
        String escaped = value.replace("'", "''");
        if (dialect.extendedStringEscapes()) {
            escaped = escaped.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t");
        }
        return "'" + escaped + "'";
    }

    private Typed dateLiteral(Expr.DateLiteral d) {
        String layout = d.hasTime() ? dialect.datetimeFormat() : dialect.dateFormat();
        String text = DateTimeFormatter.ofPattern(layout, Locale.ROOT).format(d.value());
        String formula = d.hasTime() ? dialect.datetimeLiteral() : dialect.dateLiteral();
        return new Typed(formula.replace("%1", text), d.hasTime() ? TableauType.DATETIME : TableauType.DATE,
            Level.CONSTANT, d);
    }

    private Typed in(Expr.In in) throws NotTranslatableException {
        if (in.members().isEmpty()) {
            throw new NotTranslatableException("IN needs at least one value");
        }
        Expr any = null;
        for (Expr member : in.members()) {
            Expr test = new Expr.Binary("==", in.value(), member);
            any = any == null ? test : new Expr.Binary("OR", any, test);
        }
        return expr(any);
    }

    private Typed call(String name, List<Expr> argExprs) throws NotTranslatableException {
        List<Typed> args = new ArrayList<>();
        for (Expr a : argExprs) {
            args.add(expr(a));
        }
        Matcher rawSql = RAW_SQL.matcher(name);
        if (rawSql.matches()) {
            return rawSql(name, rawSql.group(1) != null, TableauType.of(rawSql.group(2)), args);
        }
        FunctionDef def = resolve(name, args);
        Level level = combine(name, args);
        if (def.isAggregate()) {
            if (level == Level.AGGREGATE) {
                throw new NotTranslatableException(name + " of an aggregate: Tableau does not nest aggregations");
            }
            level = Level.AGGREGATE;
        }
        String sql = def.dateFunction() ? dateFunction(def, args) : substitute(def.formula(), def, args, null);
        if (sql == null) {
            throw new NotTranslatableException(def.signature() + " has no formula in the dialect");
        }
        return new Typed(sql, def.returns(), level, null);
    }

    /** Tableau's pass-through functions: {@code RAWSQL_INT("...%1...", [x])}, {@code RAWSQLAGG_REAL(...)}. */
    private static final Pattern RAW_SQL = Pattern.compile("RAWSQL(AGG)?_(BOOL|INT|REAL|STR|DATE|DATETIME)");

    /**
     * A pass-through function: its first argument, a string literal, is SQL in which {@code %1},
     * {@code %2}... stand for the other arguments; Tableau sends it as written, typed by the name.
     */
    private Typed rawSql(String name, boolean aggregate, TableauType type, List<Typed> args) throws NotTranslatableException {
        if (args.isEmpty() || !(args.get(0).literal() instanceof Expr.Str template)) {
            throw new NotTranslatableException(name + " needs the SQL as a string literal first");
        }
        List<Typed> values = args.subList(1, args.size());
        Level level = combine(name, values);
        if (aggregate && level == Level.AGGREGATE) {
            throw new NotTranslatableException(name + " of an aggregate: Tableau does not nest aggregations");
        }
        Matcher m = PLACEHOLDER.matcher(template.value());
        StringBuilder out = new StringBuilder("(");
        while (m.find()) {
            int n = Integer.parseInt(m.group(1));
            if (n < 1 || n > values.size()) {
                throw new NotTranslatableException(name + ": its SQL uses %" + n + " but has " + values.size() + " arguments");
            }
            m.appendReplacement(out, Matcher.quoteReplacement(values.get(n - 1).sql()));
        }
        m.appendTail(out).append(')');
        return new Typed(out.toString(), type, aggregate ? Level.AGGREGATE : level, null);
    }

    /** The best overload of {@code name} for {@code args}, as described on the class. */
    private FunctionDef resolve(String name, List<Typed> args) throws NotTranslatableException {
        List<FunctionDef> overloads = dialect.overloads(name);
        if (overloads.isEmpty()) {
            throw new NotTranslatableException(name + " is not in the dialect");
        }
        FunctionDef best = null;
        int bestCost = Integer.MAX_VALUE;
        for (FunctionDef def : overloads) {
            int cost = cost(def, args);
            if (cost >= 0 && cost < bestCost) {
                best = def;
                bestCost = cost;
            }
        }
        if (best == null) {
            List<String> types = new ArrayList<>();
            for (Typed a : args) {
                types.add(a.literal() != null && a.type() != TableauType.NULL ? "literal " + a.type().tddName()
                    : a.type().tddName());
            }
            throw new NotTranslatableException("no overload of " + name + " in the dialect takes (" + String.join(", ", types)
                + ")");
        }
        return best;
    }

    /** Widenings {@code def} needs for {@code args}; -1 when they do not fit. */
    private static int cost(FunctionDef def, List<Typed> args) {
        if (def.parameters().size() != args.size()) {
            return -1;
        }
        int total = 0;
        for (int i = 0; i < args.size(); i++) {
            int c = cost(args.get(i), def.parameters().get(i));
            if (c < 0) {
                return -1;
            }
            total += c;
        }
        return total;
    }

    private static int cost(Typed arg, Parameter p) {
        if (p.local()) {
            if (arg.literal() instanceof Expr.Str) {
                return p.type() == TableauType.STR ? 0 : -1;
            }
            if (arg.literal() instanceof Expr.Number n) {
                if (p.type() == TableauType.INT) {
                    return arg.type() == TableauType.INT ? 0 : -1;
                }
                return p.type() == TableauType.REAL ? (n.integral() ? 1 : 0) : -1;
            }
            return -1;
        }
        if (arg.type() == p.type()) {
            return 0;
        }
        if (arg.type() == TableauType.NULL) {
            return 1;
        }
        if (arg.type() == TableauType.INT && p.type() == TableauType.REAL) {
            return 1;
        }
        if (arg.type() == TableauType.DATE && p.type() == TableauType.DATETIME) {
            return 1;
        }
        return -1;
    }

    /** Where a call with these arguments is evaluated; aggregated and per-row arguments do not mix. */
    private static Level combine(String name, List<Typed> args) throws NotTranslatableException {
        boolean row = false;
        boolean aggregate = false;
        for (Typed a : args) {
            row |= a.level() == Level.ROW;
            aggregate |= a.level() == Level.AGGREGATE;
        }
        if (row && aggregate) {
            throw new NotTranslatableException(name + " mixes aggregate and non-aggregate arguments (an error in Tableau)");
        }
        return aggregate ? Level.AGGREGATE : row ? Level.ROW : Level.CONSTANT;
    }

    private String dateFunction(FunctionDef def, List<Typed> args) throws NotTranslatableException {
        String part = null;
        if (!NO_DATE_PART.contains(def.name())) {
            if (!(args.get(0).literal() instanceof Expr.Str s)) {
                throw new NotTranslatableException(def.name() + " needs a date part literal as its first argument");
            }
            part = s.value().trim().toLowerCase(Locale.ROOT);
            if (!DATE_PARTS.contains(part)) {
                throw new NotTranslatableException("'" + s.value() + "' is not a Tableau date part");
            }
        }
        String formula = def.formulaFor(part);
        if (formula == null && startOfWeekIndex(def) >= 0) {
            // No formula for this part with a start of week: the part does not depend on it.
            List<Typed> without = new ArrayList<>(args);
            without.remove(startOfWeekIndex(def));
            FunctionDef shorter = resolve(def.name(), without);
            String sql = shorter.formulaFor(part);
            return sql == null ? null : substitute(sql, shorter, without, part);
        }
        return formula == null ? null : substitute(formula, def, args, part);
    }

    /** The parameter of a date function that is its start of week, or -1. */
    private static int startOfWeekIndex(FunctionDef def) {
        for (int i = 1; i < def.parameters().size(); i++) {
            Parameter p = def.parameters().get(i);
            if (p.local() && p.type() == TableauType.STR) {
                return i;
            }
        }
        return -1;
    }

    /** {@code formula} with {@code %n} replaced by argument n's SQL. */
    private String substitute(String formula, FunctionDef def, List<Typed> args, String part)
        throws NotTranslatableException {
        List<String> sql = new ArrayList<>();
        int startOfWeek = def.dateFunction() ? startOfWeekIndex(def) : -1;
        for (int i = 0; i < args.size(); i++) {
            Typed a = args.get(i);
            Parameter p = def.parameters().get(i);
            if (part != null && i == 0) {
                sql.add(dialect.datePartValue(def.name(), part));
            } else if (i == startOfWeek) {
                sql.add(startOfWeek(a));
            } else if (a.type() == TableauType.NULL) {
                sql.add(dialect.nullByType().getOrDefault(p.type(), "NULL"));
            } else if (!p.local() && a.type() != p.type()) {
                sql.add(convert(a, p.type()));
            } else {
                sql.add(a.sql());
            }
        }
        Matcher m = PLACEHOLDER.matcher(formula);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            int n = Integer.parseInt(m.group(1));
            if (n < 1 || n > sql.size()) {
                throw new NotTranslatableException(def.signature() + ": its formula uses %" + n);
            }
            m.appendReplacement(out, Matcher.quoteReplacement(sql.get(n - 1)));
        }
        m.appendTail(out);
        return out.toString();
    }

    private String startOfWeek(Typed arg) throws NotTranslatableException {
        if (!(arg.literal() instanceof Expr.Str s)) {
            throw new NotTranslatableException("the start of week must be a day name literal");
        }
        DayOfWeek day;
        try {
            day = DayOfWeek.valueOf(s.value().trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new NotTranslatableException("'" + s.value() + "' is not a day of the week");
        }
        if (!dialect.startOfWeekAsNumber()) {
            return stringLiteral(s.value().trim().toLowerCase(Locale.ROOT));
        }
        int sundayZero = day.getValue() % 7;
        return Integer.toString((sundayZero + dialect.startOfWeekOffset()) % 7);
    }

    /** IF (no subject) or CASE as SQL CASE; the result type unifies the branches. */
    private Typed conditional(Expr subject, List<Expr> tests, List<Expr> results, Expr otherwise)
        throws NotTranslatableException {
        List<Typed> all = new ArrayList<>();
        Typed subjectSql = subject == null ? null : expr(subject);
        if (subjectSql != null) {
            all.add(subjectSql);
        }
        List<Typed> testSql = new ArrayList<>();
        for (Expr t : tests) {
            Typed typed = expr(t);
            if (subject == null && typed.type() != TableauType.BOOL && typed.type() != TableauType.NULL) {
                throw new NotTranslatableException("an IF condition must be a boolean, not " + typed.type().tddName());
            }
            testSql.add(typed);
        }
        if (subjectSql != null) {
            List<Typed> compared = new ArrayList<>(testSql);
            compared.add(subjectSql);
            unify("CASE values", compared);
        }
        List<Typed> resultSql = new ArrayList<>();
        for (Expr r : results) {
            resultSql.add(expr(r));
        }
        Typed otherwiseSql = otherwise == null ? null : expr(otherwise);
        List<Typed> branches = new ArrayList<>(resultSql);
        if (otherwiseSql != null) {
            branches.add(otherwiseSql);
        }
        TableauType type = unify("IF and CASE results", branches);
        all.addAll(testSql);
        all.addAll(branches);
        Level level = combine(subject == null ? "IF" : "CASE", all);

        StringBuilder sql = new StringBuilder("(CASE");
        if (subjectSql != null) {
            sql.append(' ').append(subjectSql.sql());
        }
        for (int i = 0; i < testSql.size(); i++) {
            sql.append(" WHEN ").append(testSql.get(i).sql()).append(" THEN ").append(branch(resultSql.get(i), type));
        }
        if (otherwiseSql != null) {
            sql.append(" ELSE ").append(branch(otherwiseSql, type));
        }
        return new Typed(sql.append(" END)").toString(), type, level, null);
    }

    private String branch(Typed t, TableauType type) throws NotTranslatableException {
        if (t.type() == TableauType.NULL) {
            return dialect.nullByType().getOrDefault(type, "NULL");
        }
        return t.type() == type ? t.sql() : convert(t, type);
    }

    /** Tableau's conversion function to each type a value may be widened to. */
    private static final java.util.Map<TableauType, String> CONVERSIONS =
        java.util.Map.of(TableauType.REAL, "FLOAT", TableauType.DATETIME, "DATETIME");

    /**
     * {@code value} widened to {@code type} with the dialect's conversion formula (the overload of
     * {@code FLOAT} or {@code DATETIME} that takes it, directly or widened); unchanged when the
     * dialect has none.
     */
    private String convert(Typed value, TableauType type) throws NotTranslatableException {
        String function = CONVERSIONS.get(type);
        if (function == null) {
            return value.sql();
        }
        FunctionDef best = null;
        int bestCost = Integer.MAX_VALUE;
        for (FunctionDef def : dialect.overloads(function)) {
            int c = def.parameters().size() == 1 && def.returns() == type ? cost(value, def.parameters().get(0)) : -1;
            if (c >= 0 && c < bestCost) {
                best = def;
                bestCost = c;
            }
        }
        if (best == null || best.formula() == null) {
            return value.sql();
        }
        Matcher m = PLACEHOLDER.matcher(best.formula());
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            if (!m.group(1).equals("1")) {
                throw new NotTranslatableException(best.signature() + ": its formula uses %" + m.group(1));
            }
            m.appendReplacement(out, Matcher.quoteReplacement(value.sql()));
        }
        return m.appendTail(out).toString();
    }

    /** The common type of values that must agree: equal, or widened (int to real, date to datetime). */
    private static TableauType unify(String what, List<Typed> values) throws NotTranslatableException {
        TableauType type = TableauType.NULL;
        for (Typed v : values) {
            TableauType t = v.type();
            if (t == TableauType.NULL || t == type) {
                continue;
            }
            if (type == TableauType.NULL) {
                type = t;
            } else if (type.isNumeric() && t.isNumeric()) {
                type = TableauType.REAL;
            } else if (type.isTemporal() && t.isTemporal()) {
                type = TableauType.DATETIME;
            } else {
                throw new NotTranslatableException(what + " mix " + type.tddName() + " and " + t.tddName());
            }
        }
        return type;
    }
}
