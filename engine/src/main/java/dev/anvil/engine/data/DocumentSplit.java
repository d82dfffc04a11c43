package dev.anvil.engine.data;

/** How a text file is cut into documents, each of which is preceded by the end-of-text token. */
public enum DocumentSplit {
    /** Every non-blank line is a document (one-document-per-line corpora, e.g. Europarl lines). */
    LINES,
    /**
     * Runs of non-blank lines are documents, separated by blank (whitespace-only) lines; a document's lines are
     * joined with {@code \n}. This matches llm.c's tinyshakespeare preparation.
     */
    PARAGRAPHS
}
