package io.stockflight.tableau.conformance.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.stockflight.tableau.conformance.run.Outcome;
import io.stockflight.tableau.conformance.run.Outcome.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BaselineTest {
    @TempDir
    Path dir;

    private static Outcome outcome(String test, Status status) {
        String category = test.substring(0, test.indexOf('.'));
        return new Outcome(test, category, test, "calc", status, null, "", List.of(), List.of(), "");
    }

    private static Tally tally(int datePassed, int dateFailed, int mathPassed) {
        List<Outcome> outcomes = new ArrayList<>();
        for (int i = 0; i < datePassed; i++) {
            outcomes.add(outcome("date.dateadd", Status.PASSED));
        }
        for (int i = 0; i < dateFailed; i++) {
            outcomes.add(outcome("date.dateadd", Status.FAILED));
        }
        for (int i = 0; i < mathPassed; i++) {
            outcomes.add(outcome("math.abs", Status.PASSED));
        }
        return Tally.of(outcomes);
    }

    @Test
    void aRecordedRunHoldsItsOwnBaselineAndBetterRuns() throws IOException {
        Path file = dir.resolve("baseline.properties");
        Baseline.write(file, tally(9, 1, 2), "tests");
        assertEquals(List.of(), Baseline.regressions(file, tally(9, 1, 2)));
        assertEquals(List.of(), Baseline.regressions(file, tally(10, 0, 2)));
        assertEquals(List.of(), Baseline.regressions(file, tally(18, 2, 4)));
    }

    @Test
    void aLowerRateOrAMissingCategoryRegresses() throws IOException {
        Path file = dir.resolve("baseline.properties");
        Baseline.write(file, tally(9, 1, 2), "tests");
        List<String> lower = Baseline.regressions(file, tally(8, 2, 2));
        assertEquals(3, lower.size(), lower.toString());
        assertTrue(lower.get(0).startsWith("overall: 10/12 (83.3%) is below the recorded 11/12 (91.7%)"), lower.get(0));
        List<String> gone = Baseline.regressions(file, tally(9, 1, 0));
        assertTrue(gone.contains("category.math: recorded 2/2, now absent"), gone.toString());
    }

    @Test
    void aMalformedLineNamesItsPlace() throws IOException {
        Path file = dir.resolve("bad.properties");
        Files.writeString(file, "# comment\noverall=3 of 4\n");
        IOException e = assertThrows(IOException.class, () -> Baseline.regressions(file, tally(1, 0, 0)));
        assertTrue(e.getMessage().contains("bad.properties:2: expected key=passed/total"), e.getMessage());
    }
}
