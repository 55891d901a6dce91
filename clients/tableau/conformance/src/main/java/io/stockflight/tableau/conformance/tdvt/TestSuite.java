package io.stockflight.tableau.conformance.tdvt;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Reads a directory of TDVT expression tests: {@code setup.<name>.txt} files of calculations and
 * their {@code expected.setup.<name>[.<n>].txt} results, in TDVT's formats (any directory laid
 * out that way, not only the vendored one).
 */
public final class TestSuite {
    private static final Pattern SETUP = Pattern.compile("setup\\.(.+)\\.txt");
    /** TDVT's comment lines (tdvt/test_results.py). */
    private static final Pattern COMMENT = Pattern.compile("^\\s*//.*");

    private TestSuite() {}

    /** Every test in {@code dir}, sorted by name; tests whose names match {@code only} when it is not null. */
    public static List<TestFile> load(Path dir, Pattern only) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException(dir + " is not a directory");
        }
        Set<String> names = new TreeSet<>();
        List<String> files = new ArrayList<>();
        try (Stream<Path> entries = Files.list(dir)) {
            entries.map(p -> p.getFileName().toString()).forEach(files::add);
        }
        for (String file : files) {
            Matcher m = SETUP.matcher(file);
            if (m.matches()) {
                names.add(m.group(1));
            }
        }
        if (names.isEmpty()) {
            throw new IOException(dir + " has no setup.<name>.txt files");
        }
        List<TestFile> tests = new ArrayList<>();
        for (String name : names) {
            if (only != null && !only.matcher(name).find()) {
                continue;
            }
            tests.add(new TestFile(name, calculations(dir.resolve("setup." + name + ".txt")), variants(dir, name, names, files)));
        }
        return tests;
    }

    /** The calculations of a setup file: its lines that are neither blank nor {@code //} comments. */
    static List<String> calculations(Path setup) throws IOException {
        List<String> calcs = new ArrayList<>();
        for (String line : Files.readAllLines(setup, StandardCharsets.UTF_8)) {
            String l = line.startsWith("\uFEFF") ? line.substring(1) : line;
            if (!l.isBlank() && !COMMENT.matcher(l).matches()) {
                calcs.add(l.strip());
            }
        }
        return calcs;
    }

    /** {@code expected.setup.<name>.txt} then {@code .1}, {@code .2}... (not another test's files). */
    private static List<ExpectedFile> variants(Path dir, String name, Set<String> names, List<String> files)
        throws IOException {
        Pattern own = Pattern.compile("expected\\.setup\\." + Pattern.quote(name) + "(?:\\.(\\d+))?\\.txt");
        List<String> matching = new ArrayList<>();
        for (String file : files) {
            Matcher m = own.matcher(file);
            if (m.matches() && (m.group(1) == null || !names.contains(name + "." + m.group(1)))) {
                matching.add(file);
            }
        }
        matching.sort((a, b) -> Integer.compare(variantNumber(a, own), variantNumber(b, own)));
        List<ExpectedFile> out = new ArrayList<>();
        for (String file : matching) {
            out.add(ExpectedFile.read(dir.resolve(file)));
        }
        return out;
    }

    private static int variantNumber(String file, Pattern own) {
        Matcher m = own.matcher(file);
        return m.matches() && m.group(1) != null ? Integer.parseInt(m.group(1)) : 0;
    }
}
