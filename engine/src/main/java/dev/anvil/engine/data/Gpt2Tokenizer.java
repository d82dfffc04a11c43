package dev.anvil.engine.data;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;

import java.nio.charset.StandardCharsets;

/** GPT-2's byte-pair encoding, r50k_base, by JTokkit; thread-safe. */
final class Gpt2Tokenizer implements Tokenizer {

    static final Gpt2Tokenizer INSTANCE = new Gpt2Tokenizer();

    private static final int VOCAB = 50257;
    private static final int END_OF_TEXT = 50256;

    private final Encoding encoding = Encodings.newLazyEncodingRegistry().getEncoding(EncodingType.R50K_BASE);

    private Gpt2Tokenizer() {
    }

    @Override
    public String name() {
        return "gpt2";
    }

    @Override
    public int vocabSize() {
        return VOCAB;
    }

    @Override
    public int endOfText() {
        return END_OF_TEXT;
    }

    @Override
    public int[] encode(String text) {
        return encoding.encodeOrdinary(text).toArray();
    }

    @Override
    public String decode(int[] tokens) {
        // Decode runs of known ids together so multi-token characters reassemble; JTokkit throws on unknown ids.
        StringBuilder text = new StringBuilder();
        IntArrayList run = new IntArrayList(tokens.length);
        for (int token : tokens) {
            if (token >= 0 && token < VOCAB) {
                run.add(token);
            } else {
                appendRun(text, run);
                text.append('\uFFFD');
            }
        }
        appendRun(text, run);
        return text.toString();
    }

    private void appendRun(StringBuilder text, IntArrayList run) {
        if (!run.isEmpty()) {
            text.append(new String(encoding.decodeBytes(run), StandardCharsets.UTF_8));
            run.clear();
        }
    }
}
