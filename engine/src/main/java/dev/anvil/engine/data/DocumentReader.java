package dev.anvil.engine.data;

import java.io.IOException;
import java.io.Reader;
import java.util.ArrayDeque;

/**
 * Cuts text into documents ({@link DocumentSplit}) and documents into pieces of at most {@code maxChars}
 * characters, holding no more than that in memory whatever the input's size. Line ends are normalised to
 * {@code \n}.
 *
 * <p>A long document is cut just before a whitespace character that is followed by a non-whitespace one:
 * GPT-2's pre-tokenizer always ends a token before such whitespace and starts one at it, so tokenizing the
 * pieces separately gives exactly the tokens of the whole document. Only a stretch of {@code maxChars} with no
 * such place (one enormous word) is cut anywhere, where the tokens at the cut may then differ slightly.
 */
final class DocumentReader {

    /** Text of one document, or the next part of it; {@code startsDocument} is true for a document's first. */
    record Piece(String text, boolean startsDocument) {
    }

    /** Smallest piece size; keeps cuts away from a piece's first characters. */
    static final int MIN_CHARS = 16;

    /** Characters that {@code \s} matches with or without Unicode character classes. */
    private static final String REGEX_WHITESPACE = " \t\n\u000B\f\r";

    private final Reader in;
    private final DocumentSplit split;
    private final int maxChars;
    private final char[] buffer = new char[1 << 14];
    private int position;
    private int limit;
    private final StringBuilder doc = new StringBuilder();
    private boolean docStarted;
    /** The current line's leading whitespace, held back until the line proves not to be blank. */
    private final StringBuilder indent = new StringBuilder();
    private boolean lineHasText;
    private final ArrayDeque<Piece> ready = new ArrayDeque<>();
    private boolean eof;

    DocumentReader(Reader in, DocumentSplit split, int maxChars) {
        if (maxChars < MIN_CHARS) {
            throw new IllegalArgumentException("pieces must hold at least " + MIN_CHARS + " characters, got "
                    + maxChars);
        }
        this.in = in;
        this.split = split;
        this.maxChars = maxChars;
    }

    /** The next piece, or null at the end of the input. */
    Piece next() throws IOException {
        while (ready.isEmpty() && !eof) {
            if (position == limit) {
                limit = in.read(buffer);
                position = 0;
                if (limit < 0) {
                    eof = true;
                    endLine();
                    endDocument();
                    break;
                }
            }
            accept(buffer[position++]);
        }
        return ready.poll();
    }

    private void accept(char c) {
        if (c == '\n') {
            endLine();
        } else if (lineHasText) {
            append(c);
        } else if (Character.isWhitespace(c) && indent.length() < maxChars) {
            indent.append(c);
        } else {
            lineHasText = true;
            if (split == DocumentSplit.PARAGRAPHS && (docStarted || !doc.isEmpty())) {
                append('\n');
            }
            for (int i = 0; i < indent.length(); i++) {
                append(indent.charAt(i));
            }
            indent.setLength(0);
            append(c);
        }
    }

    private void endLine() {
        if (lineHasText) {
            if (!doc.isEmpty() && doc.charAt(doc.length() - 1) == '\r') {
                doc.setLength(doc.length() - 1);
            }
            if (split == DocumentSplit.LINES) {
                endDocument();
            }
        } else if (split == DocumentSplit.PARAGRAPHS) {
            endDocument();
        }
        lineHasText = false;
        indent.setLength(0);
    }

    private void endDocument() {
        if (!doc.isEmpty()) {
            ready.add(new Piece(doc.toString(), !docStarted));
            doc.setLength(0);
        }
        docStarted = false;
    }

    private void append(char c) {
        doc.append(c);
        if (doc.length() >= maxChars) {
            int cut = cutPoint();
            ready.add(new Piece(doc.substring(0, cut), !docStarted));
            doc.delete(0, cut);
            docStarted = true;
        }
    }

    /** Whitespace by any definition the pre-tokenizer's {@code \s} might use. */
    private static boolean isAnyWhitespace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    /** Where to cut the full buffer: see the class comment. Keeps the last character for '\r' stripping. */
    private int cutPoint() {
        for (int i = doc.length() - 2; i > 0; i--) {
            char c = doc.charAt(i);
            if (REGEX_WHITESPACE.indexOf(c) >= 0 && !isAnyWhitespace(doc.charAt(i + 1))) {
                return i;
            }
        }
        int cut = doc.length() - 1;
        return Character.isLowSurrogate(doc.charAt(cut)) ? cut - 1 : cut;
    }
}
