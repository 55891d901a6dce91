package io.stockflight.tableau.conformance.tdvt;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One TDVT expression test: the calculations of {@code setup.<name>.txt} and every expected
 * file for it.
 *
 * @param name the test's name, {@code setup.} and {@code .txt} removed ({@code date.dateadd.day})
 * @param calculations the calculations, one per non-blank, non-comment line
 * @param variants the expected files ({@code expected.setup.<name>.txt}, {@code ...<name>.1.txt}...)
 */
public record TestFile(String name, List<String> calculations, List<ExpectedFile> variants) {

    /**
     * One variant's expected result for a calculation.
     *
     * @param variant the expected file it comes from
     * @param values the expected distinct values
     * @param error whether the reference run failed instead
     */
    public record Expected(String variant, List<Value> values, boolean error) {}

    /** The category: the name's first part ({@code date}). */
    public String category() {
        int dot = name.indexOf('.');
        return dot < 0 ? name : name.substring(0, dot);
    }

    /** The function family: the name's first two parts ({@code date.dateadd}). */
    public String family() {
        int first = name.indexOf('.');
        int second = first < 0 ? -1 : name.indexOf('.', first + 1);
        return second < 0 ? name : name.substring(0, second);
    }

    /**
     * What each variant expects for calculation {@code index}: the variant's test at the same
     * position, as TDVT pairs them; when a variant has a different number of tests, the one
     * whose name is the calculation (ignoring brackets, spaces, case and a {@code //} comment),
     * if any.
     */
    public List<Expected> expected(int index) {
        List<Expected> out = new ArrayList<>();
        String calc = normalized(withoutComment(calculations.get(index)));
        for (ExpectedFile variant : variants) {
            ExpectedFile.Test match = null;
            if (variant.tests().size() == calculations.size()) {
                match = variant.tests().get(index);
            } else {
                for (ExpectedFile.Test t : variant.tests()) {
                    if (normalized(withoutComment(t.name())).equals(calc)) {
                        match = t;
                        break;
                    }
                }
            }
            if (match != null) {
                out.add(new Expected(variant.fileName(), match.values(), match.error()));
            }
        }
        return out;
    }

    /** The calculation up to a {@code //} comment outside quotes and brackets. */
    static String withoutComment(String calculation) {
        char quote = 0;
        for (int i = 0; i < calculation.length(); i++) {
            char c = calculation.charAt(i);
            if (quote != 0) {
                quote = c == quote ? 0 : quote;
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '[') {
                quote = ']';
            } else if (c == '/' && calculation.startsWith("//", i)) {
                return calculation.substring(0, i);
            }
        }
        return calculation;
    }

    private static String normalized(String calculation) {
        return calculation.replaceAll("[\\[\\]\\s]", "").toLowerCase(Locale.ROOT);
    }
}
