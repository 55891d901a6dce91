package io.stockflight.tableau.conformance.tdvt;

import io.stockflight.tableau.conformance.xml.SafeXml;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.w3c.dom.Element;

/**
 * One {@code expected.setup.<name>[.<n>].txt}: for each calculation of the setup file, in order,
 * the distinct values Tableau expects ({@code <results><test name=..><table><tuple><value>}).
 *
 * @param fileName the file's name (which variant it is)
 * @param tests the expected results, in the setup file's order
 */
public record ExpectedFile(String fileName, List<Test> tests) {

    /**
     * The expected result of one calculation.
     *
     * @param name the calculation as the file names it (often without brackets)
     * @param values every value of every tuple, as TDVT flattens them
     * @param error whether the reference run failed ({@code <error>}) instead of returning rows
     */
    public record Test(String name, List<Value> values, boolean error) {}

    /** Reads an expected file. */
    public static ExpectedFile read(Path path) throws IOException {
        Element root = SafeXml.root(path, "an expected-results file");
        List<Test> tests = new ArrayList<>();
        for (Element test : SafeXml.children(root, "test")) {
            List<Value> values = new ArrayList<>();
            boolean error = !SafeXml.children(test, "error").isEmpty();
            for (Element table : SafeXml.children(test, "table")) {
                for (Element tuple : SafeXml.children(table, "tuple")) {
                    for (Element value : SafeXml.children(tuple, "value")) {
                        values.add(Value.parse(value.getTextContent()));
                    }
                }
            }
            tests.add(new Test(test.getAttribute("name"), List.copyOf(values), error));
        }
        return new ExpectedFile(path.getFileName().toString(), List.copyOf(tests));
    }
}
