package io.stockflight.tableau.conformance.tdvt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestSuiteTest {
    @TempDir
    Path dir;

    private void write(String name, String text) throws IOException {
        Files.writeString(dir.resolve(name), text);
    }

    private static String expected(String... tests) {
        StringBuilder out = new StringBuilder("<results>\n");
        for (String t : tests) {
            String[] parts = t.split("=", 2);
            out.append("<test name='").append(parts[0]).append("'><table><schema><column>c</column></schema>");
            for (String v : parts[1].split("\\|")) {
                out.append("<tuple><value>").append(v).append("</value></tuple>");
            }
            out.append("</table></test>\n");
        }
        return out.append("</results>\n").toString();
    }

    @Test
    void readsCalculationsAndPairsVariantsByPositionOrName() throws Exception {
        write("setup.math.abs.txt", "\uFEFF// a comment\nABS([int2])\n\n  abs([num0]) // inline\n");
        write("expected.setup.math.abs.txt", expected("ABS(int2)=0|2", "abs(num0)=%null%|&quot;x&quot;"));
        write("expected.setup.math.abs.2.txt", expected("abs(num0)=1.5"));
        write("expected.setup.math.abs.10.txt", expected("other=1", "ABS(int2)=9"));
        // A different test whose name extends this one's: not a variant of it.
        write("setup.math.abs.1.txt", "1\n");
        write("expected.setup.math.abs.1.txt", expected("1=1"));

        List<TestFile> tests = TestSuite.load(dir, Pattern.compile("^math\\.abs$"));
        assertEquals(1, tests.size());
        TestFile abs = tests.get(0);
        assertEquals("math", abs.category());
        assertEquals("math.abs", abs.family());
        assertEquals(List.of("ABS([int2])", "abs([num0]) // inline"), abs.calculations());
        assertEquals(List.of("expected.setup.math.abs.txt", "expected.setup.math.abs.2.txt",
            "expected.setup.math.abs.10.txt"), abs.variants().stream().map(ExpectedFile::fileName).toList());

        List<TestFile.Expected> first = abs.expected(0);
        assertEquals(2, first.size());
        assertEquals(List.of(Value.parse("0"), Value.parse("2")), first.get(0).values());
        assertEquals("expected.setup.math.abs.10.txt", first.get(1).variant());
        // The .2 file has fewer tests than the setup file: paired by name, ignoring brackets,
        // spaces, case and the // comment. The .10 file has as many: paired by position, as TDVT
        // does, whatever its tests are called.
        List<TestFile.Expected> second = abs.expected(1);
        assertEquals(3, second.size());
        assertEquals(List.of(new Value.Null(), new Value.Str("x")), second.get(0).values());
        assertEquals(List.of(Value.parse("1.5")), second.get(1).values());
        assertEquals(List.of(Value.parse("9")), second.get(2).values());
    }

    @Test
    void aDirectoryWithoutSetupFilesIsAnError() {
        IOException e = assertThrows(IOException.class, () -> TestSuite.load(dir, null));
        assertTrue(e.getMessage().contains("has no setup.<name>.txt files"), e.getMessage());
    }
}
