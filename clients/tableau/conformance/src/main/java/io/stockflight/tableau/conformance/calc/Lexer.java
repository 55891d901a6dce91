package io.stockflight.tableau.conformance.calc;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a Tableau calculation into tokens. Comments ({@code // ...} to the end of the line and
 * {@code /* ... *}{@code /}) are skipped. Strings use single or double quotes; a doubled quote
 * stands for one; there are no backslash escapes. Field names are in brackets, {@code ]]} standing
 * for {@code ]}.
 */
public final class Lexer {
    private static final String[] SYMBOLS = {"==", "!=", "<>", "<=", ">=", "+", "-", "*", "/", "%", "^", "=", "<", ">",
        "(", ")", ",", "{", "}", ":", "."};

    private final String text;
    private int pos;

    private Lexer(String text) {
        this.text = text;
    }

    /** The tokens of {@code calculation}, ending with an {@link Token.Kind#END} token. */
    public static List<Token> tokenize(String calculation) throws CalcSyntaxException {
        return new Lexer(calculation).all();
    }

    private List<Token> all() throws CalcSyntaxException {
        List<Token> tokens = new ArrayList<>();
        while (true) {
            skipSpaceAndComments();
            if (pos >= text.length()) {
                tokens.add(new Token(Token.Kind.END, "", pos));
                return tokens;
            }
            tokens.add(next());
        }
    }

    private void skipSpaceAndComments() throws CalcSyntaxException {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (Character.isWhitespace(c)) {
                pos++;
            } else if (text.startsWith("//", pos)) {
                int end = text.indexOf('\n', pos);
                pos = end < 0 ? text.length() : end + 1;
            } else if (text.startsWith("/*", pos)) {
                int end = text.indexOf("*/", pos + 2);
                if (end < 0) {
                    throw new CalcSyntaxException("unterminated /* comment", pos);
                }
                pos = end + 2;
            } else {
                return;
            }
        }
    }

    private Token next() throws CalcSyntaxException {
        int start = pos;
        char c = text.charAt(pos);
        if (c == '\'' || c == '"') {
            return new Token(Token.Kind.STRING, quoted(c, "string"), start);
        }
        if (c == '[') {
            return new Token(Token.Kind.FIELD, bracketed(), start);
        }
        if (c == '#') {
            int end = text.indexOf('#', pos + 1);
            if (end < 0) {
                throw new CalcSyntaxException("unterminated #date# literal", start);
            }
            pos = end + 1;
            return new Token(Token.Kind.DATE, text.substring(start + 1, end).trim(), start);
        }
        if (Character.isDigit(c) || (c == '.' && pos + 1 < text.length() && Character.isDigit(text.charAt(pos + 1)))) {
            return new Token(Token.Kind.NUMBER, number(), start);
        }
        if (Character.isLetter(c) || c == '_') {
            while (pos < text.length() && (Character.isLetterOrDigit(text.charAt(pos)) || text.charAt(pos) == '_')) {
                pos++;
            }
            return new Token(Token.Kind.IDENT, text.substring(start, pos), start);
        }
        for (String symbol : SYMBOLS) {
            if (text.startsWith(symbol, pos)) {
                pos += symbol.length();
                return new Token(Token.Kind.SYMBOL, symbol, start);
            }
        }
        throw new CalcSyntaxException("unexpected character '" + c + "'", start);
    }

    private String quoted(char quote, String what) throws CalcSyntaxException {
        int start = pos;
        StringBuilder out = new StringBuilder();
        pos++;
        while (pos < text.length()) {
            char c = text.charAt(pos++);
            if (c != quote) {
                out.append(c);
            } else if (pos < text.length() && text.charAt(pos) == quote) {
                out.append(quote);
                pos++;
            } else {
                return out.toString();
            }
        }
        throw new CalcSyntaxException("unterminated " + what, start);
    }

    private String bracketed() throws CalcSyntaxException {
        int start = pos;
        StringBuilder out = new StringBuilder();
        pos++;
        while (pos < text.length()) {
            char c = text.charAt(pos++);
            if (c != ']') {
                out.append(c);
            } else if (pos < text.length() && text.charAt(pos) == ']') {
                out.append(']');
                pos++;
            } else {
                return out.toString();
            }
        }
        throw new CalcSyntaxException("unterminated [field] reference", start);
    }

    private String number() {
        int start = pos;
        while (pos < text.length() && Character.isDigit(text.charAt(pos))) {
            pos++;
        }
        if (pos < text.length() && text.charAt(pos) == '.') {
            pos++;
            while (pos < text.length() && Character.isDigit(text.charAt(pos))) {
                pos++;
            }
        }
        if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
            int mark = pos++;
            if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) {
                pos++;
            }
            if (pos < text.length() && Character.isDigit(text.charAt(pos))) {
                while (pos < text.length() && Character.isDigit(text.charAt(pos))) {
                    pos++;
                }
            } else {
                pos = mark; // "2e" is the number 2 followed by a name
            }
        }
        return text.substring(start, pos);
    }
}
