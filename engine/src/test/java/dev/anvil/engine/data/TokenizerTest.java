package dev.anvil.engine.data;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenizerTest {

    private static final String NON_ASCII = "Grüße aus Zürich — naïve café, Ελληνικά, 日本語, emoji 🚀!";

    @Test
    void gpt2EncodesKnownIds() {
        Tokenizer gpt2 = Tokenizer.gpt2();
        assertArrayEquals(new int[] {15496, 995}, gpt2.encode("Hello world"));
        assertArrayEquals(new int[] {198}, gpt2.encode("\n"));
        assertEquals(50257, gpt2.vocabSize());
        assertEquals(50256, gpt2.endOfText());
    }

    @Test
    void gpt2RoundTripsAsciiAndNonAsciiText() {
        Tokenizer gpt2 = Tokenizer.gpt2();
        String ascii = "The quick brown fox jumps over the lazy dog.\n\nIt's 42 degrees; isn't it?";
        assertEquals(ascii, gpt2.decode(gpt2.encode(ascii)));
        assertEquals(NON_ASCII, gpt2.decode(gpt2.encode(NON_ASCII)));
    }

    @Test
    void literalEndOfTextInTextIsOrdinaryText() {
        Tokenizer gpt2 = Tokenizer.gpt2();
        int[] tokens = gpt2.encode("a<|endoftext|>b");
        assertFalse(Arrays.stream(tokens).anyMatch(t -> t == gpt2.endOfText()), Arrays.toString(tokens));
        assertEquals("a<|endoftext|>b", gpt2.decode(tokens));
        assertEquals("<|endoftext|>", gpt2.decode(new int[] {50256}));
    }

    @Test
    void idsOutsideTheVocabularyDecodeToReplacementCharacters() {
        int hello = Tokenizer.gpt2().encode("Hello")[0];
        assertEquals("Hello\uFFFD", Tokenizer.gpt2().decode(new int[] {hello, 50300}));
        assertEquals("A\uFFFD", Tokenizer.bytes().decode(new int[] {65, 300}));
    }

    @Test
    void bytesRoundTripUtf8AndMarkEndOfText() {
        Tokenizer bytes = Tokenizer.bytes();
        assertArrayEquals(new int[] {72, 105}, bytes.encode("Hi"));
        assertArrayEquals(new int[] {0xC3, 0xBC}, bytes.encode("ü"));
        assertEquals(NON_ASCII, bytes.decode(bytes.encode(NON_ASCII)));
        assertEquals("a<|endoftext|>b", bytes.decode(new int[] {97, 256, 98}));
        assertEquals(257, bytes.vocabSize());
    }

    @Test
    void vocabularySizePicksTheTokenizer() {
        assertSame(Tokenizer.bytes(), Tokenizer.forVocabSize(512));
        assertSame(Tokenizer.gpt2(), Tokenizer.forVocabSize(50257));
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.forVocabSize(100));
    }
}
