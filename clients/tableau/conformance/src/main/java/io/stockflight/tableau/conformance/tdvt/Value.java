package io.stockflight.tableau.conformance.tdvt;

import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.format.DateTimeParseException;
import java.util.Comparator;
import java.util.Locale;

/**
 * One value of a result, as TDVT's expected files write it: {@code %null%}, {@code "text"},
 * {@code 12}, {@code -0.90269613}, {@code true}, {@code #2004-07-04#},
 * {@code #2004-07-04 22:49:28#}, or a time of day {@code #21:07:32#} (30 December 1899, the day
 * Tableau gives times without a date).
 */
public sealed interface Value {

    /** NULL. */
    record Null() implements Value {}

    /** {@code %error%}: the reference database failed; it never matches a value. */
    record Error() implements Value {}

    /** A boolean. */
    record Bool(boolean value) implements Value {}

    /** A number; {@code integral} when written (or typed) as an integer. */
    record Num(double value, boolean integral) implements Value {}

    /** A string. */
    record Str(String value) implements Value {}

    /** A date ({@code hasTime} false) or date and time. */
    record Temporal(LocalDateTime value, boolean hasTime) implements Value {}

    /** Anything else, kept as written; it matches only the same text. */
    record Other(String text) implements Value {}

    /** The day Tableau gives a time of day without a date. */
    LocalDate TIME_ONLY_DAY = LocalDate.of(1899, 12, 30);

    /** Reads a value in TDVT's expected-file syntax. */
    static Value parse(String text) {
        String t = text == null ? "" : text;
        if (t.equals("%null%")) {
            return new Null();
        }
        if (t.equals("%error%")) {
            return new Error();
        }
        if (t.length() >= 2 && t.startsWith("\"") && t.endsWith("\"")) {
            return new Str(t.substring(1, t.length() - 1));
        }
        if (t.equals("true") || t.equals("false")) {
            return new Bool(t.equals("true"));
        }
        if (t.length() >= 2 && t.startsWith("#") && t.endsWith("#")) {
            Value temporal = temporal(t.substring(1, t.length() - 1).trim());
            return temporal != null ? temporal : new Other(t);
        }
        try {
            boolean integral = !t.contains(".") && !t.toLowerCase(Locale.ROOT).contains("e");
            return new Num(Double.parseDouble(t), integral);
        } catch (NumberFormatException e) {
            return new Other(t);
        }
    }

    private static Value temporal(String text) {
        try {
            if (text.length() == 10) {
                return new Temporal(LocalDate.parse(text).atStartOfDay(), false);
            }
            if (text.indexOf('-') < 0) {
                return new Temporal(TIME_ONLY_DAY.atTime(LocalTime.parse(text)), true);
            }
            return new Temporal(LocalDateTime.parse(text.replace(' ', 'T')), true);
        } catch (DateTimeParseException e) {
            return null;
        }
    }

    /** This value in TDVT's syntax (for reports). */
    default String literal() {
        if (this instanceof Null) {
            return "%null%";
        } else if (this instanceof Error) {
            return "%error%";
        } else if (this instanceof Bool b) {
            return Boolean.toString(b.value());
        } else if (this instanceof Num n) {
            return n.integral() && n.value() == Math.rint(n.value()) && Math.abs(n.value()) < 1e18
                ? Long.toString((long) n.value()) : Double.toString(n.value());
        } else if (this instanceof Str s) {
            return "\"" + s.value() + "\"";
        } else if (this instanceof Temporal d) {
            if (!d.hasTime()) {
                return "#" + d.value().toLocalDate() + "#";
            }
            LocalTime t = d.value().toLocalTime();
            String time = String.format(Locale.ROOT, "%02d:%02d:%02d", t.getHour(), t.getMinute(), t.getSecond());
            if (t.getNano() != 0) {
                time += String.format(Locale.ROOT, ".%09d", t.getNano()).replaceAll("0+$", "");
            }
            return d.value().toLocalDate().equals(TIME_ONLY_DAY) ? "#" + time + "#" : "#" + d.value().toLocalDate() + " " + time + "#";
        }
        return ((Other) this).text();
    }

    /** Relative tolerance for reals: expected files keep 8 significant digits, some references computed in single precision. */
    double RELATIVE_TOLERANCE = 1e-6;
    /** Absolute tolerance for reals near zero (sin(pi) is 1.2e-16, written 0.0). */
    double ABSOLUTE_TOLERANCE = 1e-9;

    /**
     * Whether two values are the same result: integers exactly, reals within {@link
     * #RELATIVE_TOLERANCE}, strings exactly, a date equal to the same day's midnight.
     */
    static boolean same(Value a, Value b) {
        if (a instanceof Num x && b instanceof Num y) {
            if (x.integral() && y.integral()) {
                return x.value() == y.value();
            }
            double diff = Math.abs(x.value() - y.value());
            return diff <= ABSOLUTE_TOLERANCE || diff <= RELATIVE_TOLERANCE * Math.max(Math.abs(x.value()), Math.abs(y.value()));
        }
        if (a instanceof Temporal x && b instanceof Temporal y) {
            return x.value().equals(y.value());
        }
        if (a instanceof Error || b instanceof Error) {
            return false;
        }
        return a.equals(b);
    }

    /** An order in which equal values line up: NULL first, then by kind, then by value. */
    Comparator<Value> ORDER = Comparator.comparingInt(Value::rank).thenComparing(Value::compareWithinKind);

    private static int rank(Value v) {
        if (v instanceof Null) {
            return 0;
        } else if (v instanceof Bool) {
            return 1;
        } else if (v instanceof Num) {
            return 2;
        } else if (v instanceof Temporal) {
            return 3;
        } else if (v instanceof Str) {
            return 4;
        } else if (v instanceof Error) {
            return 6;
        }
        return 5;
    }

    private static int compareWithinKind(Value a, Value b) {
        if (a instanceof Bool x && b instanceof Bool y) {
            return Boolean.compare(x.value(), y.value());
        } else if (a instanceof Num x && b instanceof Num y) {
            return Double.compare(x.value(), y.value());
        } else if (a instanceof Temporal x && b instanceof Temporal y) {
            return x.value().compareTo(y.value());
        } else if (a instanceof Str x && b instanceof Str y) {
            return x.value().compareTo(y.value());
        }
        return a.literal().compareTo(b.literal());
    }
}
