package io.stockflight.tableau.conformance.translate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.stockflight.tableau.conformance.calc.Parser;
import io.stockflight.tableau.conformance.dialect.Dialect;
import io.stockflight.tableau.conformance.dialect.DialectLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The translator on a small dialect written here, so each rule shows in the SQL it produces. */
class TranslatorTest {
    private static final String DIALECT = """
        <dialect name='Test' class='test' version='18.1'>
          <function-map>
            <function group='operator' name='+' return-type='int'><formula>(%1 + %2)</formula>
              <argument type='int' /><argument type='int' /></function>
            <function group='operator' name='+' return-type='real'><formula>(%1 +. %2)</formula>
              <argument type='real' /><argument type='real' /></function>
            <function group='operator' name='==' return-type='bool'><formula>(%1 = %2)</formula>
              <argument type='real' /><argument type='real' /></function>
            <function group='operator' name='==' return-type='bool'><formula>(%1 =d %2)</formula>
              <argument type='datetime' /><argument type='datetime' /></function>
            <function group='operator' name='&amp;&amp;' return-type='bool'><formula>(%1 AND %2)</formula>
              <argument type='bool' /><argument type='bool' /></function>
            <function group='operator' name='||' return-type='bool'><formula>(%1 OR %2)</formula>
              <argument type='bool' /><argument type='bool' /></function>
            <function group='cast' name='DATE' return-type='date'><formula>D(%1)</formula>
              <argument type='datetime' /></function>
            <function group='cast' name='DATE' return-type='date'><formula>DS(%1)</formula>
              <argument type='str' /></function>
            <function group='cast' name='FLOAT' return-type='real'><formula>F(%1)</formula>
              <argument type='real' /></function>
            <function group='cast' name='DATETIME' return-type='datetime'><formula>DT(%1)</formula>
              <argument type='datetime' /></function>
            <function group='numeric' name='ROUND' return-type='real'><formula>R(%1, %2)</formula>
              <argument type='real' /><argument type='localint' /></function>
            <function group='aggregate' name='SUM' return-type='real'><formula>SUM(%1)</formula>
              <argument type='real' /></function>
            <date-function name='DATEPART' return-type='int'><formula>DP('%1', %2)</formula>
              <argument type='localstr' /><argument type='datetime' /></date-function>
            <date-function name='DATEPART' return-type='int'><formula part='week'>DPW('%1', %2, %3)</formula>
              <argument type='localstr' /><argument type='datetime' /><argument type='localstr' /></date-function>
          </function-map>
          <sql-format>
            <date-parts><date-part-group><date-function name='DATEPART' /><part name='week' value='wk' /></date-part-group></date-parts>
            <format-date-literal formula="DATE '%1'" format='yyyy-MM-dd' />
            <format-datetime-literal formula="TS '%1'" format='yyyy-MM-dd HH:mm:ss' />
            <format-false literal='F' />
            <format-null><local-type name='date' value='NULL::DATE' /><local-type name='datetime' value='NULL::TS' /></format-null>
            <format-select><part name='Select' value='SELECT %1' /><part name='From' value='FROM %1' /><part name='Group' value='GROUP BY %1' /></format-select>
            <format-true literal='T' />
            <start-of-week-offset value='1' />
          </sql-format>
        </dialect>
        """;

    @TempDir
    static Path dir;
    private static Translator translator;

    @BeforeAll
    static void load() throws IOException {
        Path tdd = dir.resolve("test.tdd");
        Files.writeString(tdd, DIALECT);
        Dialect dialect = DialectLoader.load(tdd);
        Schema schema = new Schema().add("int0", TableauType.INT).add("num0", TableauType.REAL)
            .add("date0", TableauType.DATE).add("Order Date", TableauType.DATETIME).add("str0", TableauType.STR)
            .add("b", TableauType.BOOL);
        translator = new Translator(dialect, schema, "\"");
    }

    private static Translation sql(String calc) throws Exception {
        return translator.translate(Parser.parse(calc));
    }

    private static String fails(String calc) {
        return assertThrows(NotTranslatableException.class, () -> sql(calc)).getMessage();
    }

    @Test
    void theOverloadNeedingFewestWideningsWins() throws Exception {
        assertEquals(new Translation("(\"int0\" + 1)", TableauType.INT, false), sql("[int0] + 1"));
        // A widened argument goes through the dialect's conversion: FLOAT for int to real,
        // DATETIME for date to datetime; a date literal follows the dialect's format.
        assertEquals(new Translation("(F(\"int0\") +. \"num0\")", TableauType.REAL, false), sql("[INT0] + [num0]"));
        assertEquals("(DT(\"date0\") =d DT(DATE '2010-04-12'))", sql("[date0] = #4/12/2010#").sql());
        assertEquals("(\"Order Date\" =d TS '2004-04-15 13:45:00')", sql("[Order Date] == #2004-04-15 13:45:00#").sql());
    }

    @Test
    void bareNullsTakeTheTypedNullOfTheirParameter() throws Exception {
        // Both DATE overloads fit NULL at the same cost: the first in the file wins.
        assertEquals(new Translation("D(NULL::TS)", TableauType.DATE, false), sql("DATE(NULL)"));
        assertEquals("DS('2004-01-01')", sql("DATE('2004-01-01')").sql());
    }

    @Test
    void localParametersTakeOnlyLiterals() throws Exception {
        assertEquals("R(\"num0\", 2)", sql("ROUND([num0], 2)").sql());
        assertTrue(fails("ROUND([num0], [int0])").contains("no overload of ROUND in the dialect takes (real, int)"));
        assertTrue(fails("ROUND([num0], 2.5)").contains("takes (real, literal real)"));
    }

    @Test
    void datePartsMapThroughTheDialectAndTheStartOfWeekIsANumber() throws Exception {
        assertEquals("DP('year', DT(\"date0\"))", sql("DATEPART('year', [date0])").sql());
        // week has a start-of-week formula; Monday is 1, plus the dialect's offset of 1.
        assertEquals("DPW('wk', DT(\"date0\"), 2)", sql("DATEPART('week', [date0], 'Monday')").sql());
        // No start-of-week formula for year: the two-argument form, without the start of week.
        assertEquals("DP('year', \"Order Date\")", sql("DATEPART('YEAR', [Order Date], 'monday')").sql());
        assertTrue(fails("DATEPART('fortnight', [date0])").contains("not a Tableau date part"));
        assertTrue(fails("DATEPART('week', [date0], 'someday')").contains("not a day of the week"));
    }

    @Test
    void ifAndCaseBecomeSqlCaseWithUnifiedTypes() throws Exception {
        // An int branch of a real IF is converted, so the database need not guess the CASE's type.
        assertEquals(new Translation("(CASE WHEN (\"num0\" = F(1)) THEN F(\"int0\") WHEN F THEN \"num0\" END)",
            TableauType.REAL, false), sql("IF [num0] = 1 THEN [int0] ELSEIF FALSE THEN [num0] END"));
        assertEquals(new Translation("(CASE \"int0\" WHEN 7 THEN NULL::DATE ELSE \"date0\" END)", TableauType.DATE, false),
            sql("CASE [int0] WHEN 7 THEN NULL ELSE [date0] END"));
        assertTrue(fails("IF [b] THEN 'a' ELSE 1 END").contains("mix str and int"));
        assertTrue(fails("IF [int0] THEN 1 END").contains("must be a boolean"));
    }

    @Test
    void inBecomesEqualitiesAndBooleansUseTheDialectsLiterals() throws Exception {
        assertEquals("((\"num0\" = F(1)) OR (\"num0\" = F(2)))", sql("[num0] IN (1, 2)").sql());
        assertEquals(new Translation("(T AND \"b\")", TableauType.BOOL, false), sql("TRUE AND [b]"));
        assertEquals("(\"num0\" +. (-1.5))", sql("[num0] + -1.5").sql());
        assertEquals("(\"num0\" +. 0.3)", sql("[num0] + .3").sql());
    }

    @Test
    void aggregatesAreMarkedAndDoNotMixWithRows() throws Exception {
        Translation sum = sql("SUM([num0]) + 1");
        assertEquals(new Translation("(SUM(\"num0\") +. F(1))", TableauType.REAL, true), sum);
        assertEquals("SELECT (SUM(\"num0\") +. F(1)) AS \"TEMP(Test)\" FROM \"calcs\"",
            translator.select(sum, "calcs", "TEMP(Test)"));
        Translation row = sql("[int0] + 1");
        assertFalse(row.aggregate());
        assertEquals("SELECT (\"int0\" + 1) AS \"TEMP(Test)\" FROM \"calcs\" GROUP BY 1", translator.select(row, "calcs", "TEMP(Test)"));
        assertTrue(fails("SUM([num0]) + [num0]").contains("mixes aggregate and non-aggregate"));
        assertTrue(fails("SUM(SUM([num0]))").contains("does not nest"));
    }

    @Test
    void passThroughSqlIsSentAsWrittenWithItsArguments() throws Exception {
        assertEquals(new Translation("(\"int0\" + 2 * \"num0\")", TableauType.INT, false),
            sql("RAWSQL_INT(\"%1 + 2 * %2\", [int0], [num0])"));
        assertEquals(new Translation("(MEDIAN(\"num0\"))", TableauType.REAL, true), sql("RAWSQLAGG_REAL('MEDIAN(%1)', [num0])"));
        assertTrue(fails("RAWSQL_INT('%2', [int0])").contains("uses %2 but has 1 arguments"));
        assertTrue(fails("RAWSQL_STR([str0])").contains("needs the SQL as a string literal first"));
    }

    @Test
    void whatTheDialectLacksIsNotTranslatable() {
        assertTrue(fails("RUNNING_SUM([num0])").contains("RUNNING_SUM is not in the dialect"));
        assertTrue(fails("[nope] + 1").contains("no field [nope]"));
        assertTrue(fails("{FIXED [str0] : SUM([num0])}").contains("level of detail"));
        assertTrue(fails("[str0] + 1").contains("no overload of + in the dialect takes (str, literal int)"));
    }
}
