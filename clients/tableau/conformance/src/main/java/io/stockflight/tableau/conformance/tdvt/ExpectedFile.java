package io.stockflight.tableau.conformance.tdvt;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.xml.sax.SAXException;

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
        Element root;
        try {
            DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
            factory.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            root = factory.newDocumentBuilder().parse(path.toFile()).getDocumentElement();
        } catch (ParserConfigurationException | SAXException e) {
            throw new IOException(path + " is not an expected-results file: " + e.getMessage(), e);
        }
        List<Test> tests = new ArrayList<>();
        for (Element test : children(root, "test")) {
            List<Value> values = new ArrayList<>();
            boolean error = !children(test, "error").isEmpty();
            for (Element table : children(test, "table")) {
                for (Element tuple : children(table, "tuple")) {
                    for (Element value : children(tuple, "value")) {
                        values.add(Value.parse(value.getTextContent()));
                    }
                }
            }
            tests.add(new Test(test.getAttribute("name"), List.copyOf(values), error));
        }
        return new ExpectedFile(path.getFileName().toString(), List.copyOf(tests));
    }

    private static List<Element> children(Element parent, String tag) {
        List<Element> out = new ArrayList<>();
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element e && e.getTagName().equals(tag)) {
                out.add(e);
            }
        }
        return out;
    }
}
