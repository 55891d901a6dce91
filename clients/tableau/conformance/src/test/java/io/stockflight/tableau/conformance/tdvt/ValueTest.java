package io.stockflight.tableau.conformance.tdvt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.LocalDateTime;
import org.junit.jupiter.api.Test;

class ValueTest {
    @Test
    void parsesTdvtsLiteralSyntax() {
        assertEquals(new Value.Null(), Value.parse("%null%"));
        assertEquals(new Value.Error(), Value.parse("%error%"));
        assertEquals(new Value.Str("  padded "), Value.parse("\"  padded \""));
        assertEquals(new Value.Str(""), Value.parse("\"\""));
        assertEquals(new Value.Bool(false), Value.parse("false"));
        assertEquals(new Value.Num(-14, true), Value.parse("-14"));
        assertEquals(new Value.Num(1.850112e8, false), Value.parse("1.850112e+08"));
        assertEquals(new Value.Temporal(LocalDateTime.of(2004, 7, 4, 0, 0), false), Value.parse("#2004-07-04#"));
        assertEquals(new Value.Temporal(LocalDateTime.of(2004, 7, 4, 22, 49, 28), true), Value.parse("#2004-07-04 22:49:28#"));
        assertEquals(new Value.Temporal(LocalDateTime.of(1899, 12, 30, 21, 7, 32), true), Value.parse("#21:07:32#"));
        assertEquals(new Value.Other("#yesterday#"), Value.parse("#yesterday#"));
    }

    @Test
    void literalsRoundTrip() {
        for (String s : new String[] {"%null%", "\"a b\"", "true", "-14", "0.5", "#2004-07-04#", "#2004-07-04 22:49:28#",
            "#21:07:32#", "#2010-10-10 10:10:10.4#"}) {
            assertEquals(s, Value.parse(s).literal(), s);
        }
    }

    @Test
    void integersCompareExactlyAndRealsWithinATolerance() {
        assertTrue(Value.same(Value.parse("6.1818182"), new Value.Num(68.0 / 11, false)));
        assertTrue(Value.same(Value.parse("6.8000002"), Value.parse("6.8")));
        assertTrue(Value.same(Value.parse("0.0"), new Value.Num(1.2246e-16, false)));
        assertTrue(Value.same(Value.parse("13.0"), new Value.Num(13, true)));
        assertFalse(Value.same(Value.parse("6.1818"), new Value.Num(68.0 / 11, false)));
        assertFalse(Value.same(Value.parse("1087603200"), new Value.Num(1087603201, true)));
        assertFalse(Value.same(Value.parse("1"), new Value.Bool(true)));
    }

    @Test
    void aDateEqualsTheSameDaysMidnightOnly() {
        assertTrue(Value.same(Value.parse("#2004-07-04#"), Value.parse("#2004-07-04 00:00:00#")));
        assertFalse(Value.same(Value.parse("#2004-07-04#"), Value.parse("#2004-07-04 00:00:01#")));
        assertFalse(Value.same(new Value.Error(), new Value.Error()));
    }
}
