package io.stockflight.tableau.conformance.calc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.LocalDateTime;
import java.util.List;
import org.junit.jupiter.api.Test;

class ParserTest {
    private static Expr parse(String calc) throws CalcSyntaxException {
        return Parser.parse(calc);
    }

    private static Expr.Field f(String name) {
        return new Expr.Field(name);
    }

    private static Expr.Number n(String text) {
        return new Expr.Number(text, !text.contains("."));
    }

    @Test
    void multiplicationBindsTighterThanAdditionAndBothAssociateLeft() throws Exception {
        assertEquals(new Expr.Binary("+", n("1"), new Expr.Binary("*", n("2"), n("3"))), parse("1 + 2 * 3"));
        assertEquals(new Expr.Binary("-", new Expr.Binary("-", n("8"), n("4")), n("2")), parse("8 - 4 - 2"));
    }

    @Test
    void negationBindsTighterThanPower() throws Exception {
        // Tableau: -2^2 is (-2)^2 = 4.
        assertEquals(new Expr.Binary("^", n("-2"), n("2")), parse("-2^2"));
        assertEquals(new Expr.Unary("-", f("num0")), parse("-[num0]"));
    }

    @Test
    void notIsLooserThanComparisonAndTighterThanAnd() throws Exception {
        Expr expected = new Expr.Binary("OR", new Expr.Binary("=", f("a"), n("1")),
            new Expr.Binary("AND", new Expr.Unary("NOT", new Expr.Binary("<", f("b"), n("2"))), f("c")));
        assertEquals(expected, parse("[a] = 1 or not [b] < 2 AND [c]"));
    }

    @Test
    void ifWithElseifAndCaseWithElse() throws Exception {
        Expr.If i = assertInstanceOf(Expr.If.class,
            parse("IF [int0] = 1 THEN 'yes' ELSEIF [int0] = 3 THEN 'yes3' ELSE 'no' END"));
        assertEquals(2, i.conditions().size());
        assertEquals(List.of(new Expr.Str("yes"), new Expr.Str("yes3")), i.results());
        assertEquals(new Expr.Str("no"), i.otherwise());
        Expr.Case c = assertInstanceOf(Expr.Case.class, parse("case [int0] when 1 then 'a' when 3 then null end"));
        assertEquals(f("int0"), c.subject());
        assertEquals(List.of(n("1"), n("3")), c.whens());
        assertEquals(new Expr.Null(), c.results().get(1));
        assertEquals(null, c.otherwise());
    }

    @Test
    void literalsCommentsAndFieldSpellings() throws Exception {
        assertEquals(new Expr.Str("i'm \"null\""), parse("'i''m \"null\"'"));
        assertEquals(new Expr.Str("A\\("), parse("\"A\\(\""));
        assertEquals(new Expr.Call("SPLIT", List.of(new Expr.Str("a-b-c"), new Expr.Str("-"), n("2"))),
            parse("SPLIT(\"a-b-c\", \"-\", 2) //b"));
        assertEquals(new Expr.Number(".3", false), parse("/* leading */ .3"));
        assertEquals(new Expr.Number("1e5", false), parse("1e5"));
        assertEquals(f("Order Date"), parse("[Order Date]"));
        assertEquals(f("a]b"), parse("[a]]b]"));
        assertEquals(f("num0"), parse("[Calcs].[num0]"));
        assertEquals(f("date2"), parse("date2"));
        assertEquals(new Expr.Bool(true), parse("TRUE"));
        assertEquals(new Expr.In(f("x"), List.of(n("1"), n("2"))), parse("[x] IN (1, 2)"));
    }

    @Test
    void dateLiteralsInTableausLayouts() throws Exception {
        assertEquals(new Expr.DateLiteral(LocalDateTime.of(2010, 4, 12, 0, 0), false), parse("#4/12/2010#"));
        assertEquals(new Expr.DateLiteral(LocalDateTime.of(2004, 4, 15, 0, 0), false), parse("#2004-04-15#"));
        assertEquals(new Expr.DateLiteral(LocalDateTime.of(2004, 4, 15, 13, 45, 7), true), parse("# 2004-04-15 13:45:07 #"));
        assertEquals(new Expr.DateLiteral(LocalDateTime.of(2004, 7, 4, 22, 49), true), parse("#7/4/2004 10:49 PM#"));
        assertEquals(new Expr.DateLiteral(LocalDateTime.of(2018, 9, 22, 0, 0), false), parse("#September 22, 2018#"));
        assertThrows(CalcSyntaxException.class, () -> parse("#2004-13-40#"));
    }

    @Test
    void levelOfDetailIsRecognisedAsAWhole() throws Exception {
        Expr.LevelOfDetail lod = assertInstanceOf(Expr.LevelOfDetail.class, parse("{fixed [str1] : SUM([num1])}"));
        assertEquals("FIXED", lod.keyword());
    }

    @Test
    void syntaxErrorsNameWhatAndWhere() {
        CalcSyntaxException missingEnd = assertThrows(CalcSyntaxException.class, () -> parse("IF [a] THEN 1"));
        assertTrue(missingEnd.getMessage().contains("expected END, found the end"), missingEnd.getMessage());
        CalcSyntaxException string = assertThrows(CalcSyntaxException.class, () -> parse("LEFT('abc, 2)"));
        assertTrue(string.getMessage().contains("unterminated string (at character 6)"), string.getMessage());
        assertThrows(CalcSyntaxException.class, () -> parse("1 +"));
        assertThrows(CalcSyntaxException.class, () -> parse("(1"));
        assertThrows(CalcSyntaxException.class, () -> parse("1 2"));
        assertThrows(CalcSyntaxException.class, () -> parse("[a] @ 1"));
        assertThrows(CalcSyntaxException.class, () -> parse("THEN"));
    }
}
