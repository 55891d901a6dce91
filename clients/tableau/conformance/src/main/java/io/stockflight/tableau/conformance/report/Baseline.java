package io.stockflight.tableau.conformance.report;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The last recorded pass rates: lines {@code key=passed/total} for {@code overall},
 * {@code category.<c>} and {@code family.<f>}; {@code #} starts a comment. A run regresses when
 * any recorded rate drops or a recorded key disappears.
 */
public final class Baseline {
    private Baseline() {}

    /** Passed and total of one key. */
    record Rate(int passed, int total) {}

    /** Reads a baseline file. */
    static Map<String, Rate> read(Path file) throws IOException {
        Map<String, Rate> out = new LinkedHashMap<>();
        int lineNumber = 0;
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            lineNumber++;
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("#")) {
                continue;
            }
            String[] kv = l.split("=", 2);
            String[] pt = kv.length == 2 ? kv[1].strip().split("/", 2) : new String[0];
            try {
                out.put(kv[0].strip(), new Rate(Integer.parseInt(pt[0].strip()), Integer.parseInt(pt[1].strip())));
            } catch (RuntimeException e) {
                throw new IOException(file + ":" + lineNumber + ": expected key=passed/total, found '" + l + "'", e);
            }
        }
        return out;
    }

    /** Where {@code tally} falls below the baseline in {@code file}; empty when it does not. */
    public static List<String> regressions(Path file, Tally tally) throws IOException {
        Map<String, Tally.Counts> now = tally.byKey();
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, Rate> e : read(file).entrySet()) {
            Rate was = e.getValue();
            Tally.Counts is = now.get(e.getKey());
            if (is == null) {
                out.add(e.getKey() + ": recorded " + was.passed() + "/" + was.total() + ", now absent");
            } else if ((long) is.passed() * was.total() < (long) was.passed() * is.total()) {
                out.add(String.format(Locale.ROOT, "%s: %d/%d (%.1f%%) is below the recorded %d/%d (%.1f%%)", e.getKey(),
                    is.passed(), is.total(), is.percent(), was.passed(), was.total(), 100.0 * was.passed() / Math.max(1, was.total())));
            }
        }
        return out;
    }

    /** Records {@code tally} as the new baseline. */
    public static void write(Path file, Tally tally, String source) throws IOException {
        StringBuilder out = new StringBuilder();
        out.append("# Tableau conformance baseline: passed/total per key, as last recorded over ").append(source).append('\n');
        out.append("# The CI step fails when any rate drops below these. Update with: clients/tableau/conformance/run --record\n");
        tally.byKey().forEach((k, v) -> out.append(k).append('=').append(v.passed()).append('/').append(v.total()).append('\n'));
        Files.writeString(file, out.toString(), StandardCharsets.UTF_8);
    }
}
