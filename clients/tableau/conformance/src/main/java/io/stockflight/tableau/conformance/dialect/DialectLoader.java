package io.stockflight.tableau.conformance.dialect;

import io.stockflight.tableau.conformance.translate.TableauType;
import io.stockflight.tableau.conformance.xml.SafeXml;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.w3c.dom.Element;

/** Reads a Tableau dialect definition ({@code .tdd}) into a {@link Dialect}. */
public final class DialectLoader {
    private DialectLoader() {}

    /** Reads {@code tdd}; a file that is not a dialect, or a formula setting the runner cannot follow, is an error. */
    public static Dialect load(Path tdd) throws IOException {
        Element root = SafeXml.root(tdd, "a dialect definition");
        if (!root.getTagName().equals("dialect")) {
            throw new IOException(tdd + ": the root element is <" + root.getTagName() + ">, not <dialect>");
        }
        Element format = child(root, "sql-format");
        requireCase(tdd, format, "format-if-then-else");
        requireCase(tdd, format, "format-simple-case");
        return new Dialect(
            root.getAttribute("name"),
            functions(tdd, child(root, "function-map")),
            dateParts(format),
            value(format, "format-true", "literal", "TRUE"),
            value(format, "format-false", "literal", "FALSE"),
            nulls(format),
            attribute(format, "format-date-literal", "formula", "DATE '%1'"),
            attribute(format, "format-date-literal", "format", "yyyy-MM-dd"),
            attribute(format, "format-datetime-literal", "formula", "TIMESTAMP '%1'"),
            attribute(format, "format-datetime-literal", "format", "yyyy-MM-dd HH:mm:ss"),
            Integer.parseInt(attribute(format, "start-of-week-offset", "value", "0")),
            attribute(format, "start-of-week-format", "value", "Number").equals("Number"),
            selectParts(format),
            attribute(format, "format-string-literal", "value", "Standard").equals("Extended"));
    }

    /** The runner writes IF and CASE as SQL CASE; a dialect asking for IIF forms is refused, not misread. */
    private static void requireCase(Path tdd, Element format, String setting) throws IOException {
        String value = attribute(format, setting, "value", "Case");
        if (!value.equals("Case")) {
            throw new IOException(tdd + ": <" + setting + " value='" + value + "'> is not supported by this runner (only Case)");
        }
    }

    private static Map<String, List<FunctionDef>> functions(Path tdd, Element map) throws IOException {
        Map<String, List<FunctionDef>> out = new LinkedHashMap<>();
        if (map == null) {
            return out;
        }
        for (Element e : SafeXml.children(map, null)) {
            boolean dateFunction = e.getTagName().equals("date-function");
            if (!dateFunction && !e.getTagName().equals("function")) {
                continue; // split functions and remove-function do not define overloads
            }
            String name = e.getAttribute("name").toUpperCase(Locale.ROOT);
            String formula = null;
            Map<String, String> parts = new LinkedHashMap<>();
            String unagg = null;
            List<Parameter> params = new ArrayList<>();
            for (Element c : SafeXml.children(e, null)) {
                switch (c.getTagName()) {
                    case "formula" -> {
                        if (c.hasAttribute("part")) {
                            parts.put(c.getAttribute("part"), c.getTextContent());
                        } else {
                            formula = c.getTextContent();
                        }
                    }
                    case "unagg-formula" -> unagg = c.getTextContent();
                    case "argument" -> params.add(Parameter.of(c.getAttribute("type")));
                    default -> throw new IOException(tdd + ": unexpected <" + c.getTagName() + "> in " + name);
                }
            }
            Set<String> groups = new LinkedHashSet<>();
            for (String g : e.getAttribute("group").split("[,;]")) {
                if (!g.isBlank()) {
                    groups.add(g.trim().toLowerCase(Locale.ROOT));
                }
            }
            if (dateFunction) {
                groups.add("date");
            }
            FunctionDef def = new FunctionDef(name, groups, TableauType.of(e.getAttribute("return-type")), List.copyOf(params),
                formula, Map.copyOf(parts), unagg, dateFunction);
            out.computeIfAbsent(name, k -> new ArrayList<>()).add(def);
        }
        return out;
    }

    private static Map<String, Map<String, String>> dateParts(Element format) {
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        if (format == null) {
            return out;
        }
        for (Element parts : SafeXml.children(format, null)) {
            if (!parts.getTagName().equals("date-parts")) {
                continue;
            }
            for (Element group : SafeXml.children(parts, null)) {
                List<String> functions = new ArrayList<>();
                Map<String, String> values = new LinkedHashMap<>();
                for (Element c : SafeXml.children(group, null)) {
                    if (c.getTagName().equals("date-function")) {
                        functions.add(c.getAttribute("name").toUpperCase(Locale.ROOT));
                    } else if (c.getTagName().equals("part")) {
                        values.put(c.getAttribute("name"), c.getAttribute("value"));
                    }
                }
                if (functions.isEmpty()) {
                    functions.add("");
                }
                for (String f : functions) {
                    out.computeIfAbsent(f, k -> new LinkedHashMap<>()).putAll(values);
                }
            }
        }
        return out;
    }

    private static Map<TableauType, String> nulls(Element format) {
        Map<TableauType, String> out = new EnumMap<>(TableauType.class);
        Element nulls = child(format, "format-null");
        if (nulls != null) {
            for (Element t : SafeXml.children(nulls, null)) {
                out.put(TableauType.of(t.getAttribute("name")), t.getAttribute("value"));
            }
        }
        return out;
    }

    private static Map<String, String> selectParts(Element format) {
        Map<String, String> out = new LinkedHashMap<>();
        Element select = child(format, "format-select");
        if (select != null) {
            for (Element p : SafeXml.children(select, null)) {
                out.putIfAbsent(p.getAttribute("name"), p.getAttribute("value"));
            }
        }
        return out;
    }

    /** {@code <format-true literal='..'>}: the newer {@code literal}, else the older {@code value}. */
    private static String value(Element format, String element, String attribute, String fallback) {
        Element e = child(format, element);
        if (e == null) {
            return fallback;
        }
        if (e.hasAttribute(attribute)) {
            return e.getAttribute(attribute);
        }
        return e.hasAttribute("value") ? e.getAttribute("value") : fallback;
    }

    private static String attribute(Element parent, String element, String attribute, String fallback) {
        Element e = child(parent, element);
        return e != null && e.hasAttribute(attribute) ? e.getAttribute(attribute) : fallback;
    }

    private static Element child(Element parent, String tag) {
        List<Element> found = parent == null ? List.of() : SafeXml.children(parent, tag);
        return found.isEmpty() ? null : found.get(0);
    }
}
