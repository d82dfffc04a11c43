package dev.anvil.engine.cli;

import dev.anvil.engine.checkpoint.Checksums;
import dev.anvil.engine.data.DefaultCorpus;
import dev.anvil.engine.data.TokenSource;
import dev.anvil.engine.data.Tokenizer;
import dev.anvil.engine.model.GptConfig;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code --data} and {@code --val-data}: where training and validation tokens come from. */
final class DataOptions {

    @Option(names = "--data", paramLabel = "PATH",
            description = "Training tokens: a shard, a directory or glob of shards, or a text file (default: the embedded Europarl corpus)")
    String data;

    @Option(names = "--val-data", paramLabel = "PATH",
            description = "Validation tokens, same forms as --data (default with the embedded corpus: its held-out part)")
    String valData;

    /**
     * The token sources, for a model of shape {@code model}.
     *
     * @param train the training stream
     * @param val   the validation stream, or {@code null} for none
     */
    record Resolved(TokenSource train, TokenSource val) {

        /** SHA-256 of every file the sources read, for the run manifest. */
        Map<String, String> sha256() throws IOException {
            Map<String, String> sums = new LinkedHashMap<>();
            for (TokenSource source : new TokenSource[] {train, val}) {
                if (source != null) {
                    for (Path file : source.files()) {
                        sums.put(file.toString(), Checksums.sha256(file));
                    }
                }
            }
            return sums;
        }
    }

    /** Opens the sources; text is tokenized with the tokenizer that fits the model's vocabulary. */
    Resolved resolve(GptConfig model) throws IOException {
        Tokenizer tokenizer = Tokenizer.forVocabSize(model.vocabSize());
        if (data == null) {
            DefaultCorpus.Split corpus = DefaultCorpus.load(tokenizer);
            return new Resolved(corpus.train(), valData == null ? corpus.val() : TokenSource.resolve(valData, tokenizer));
        }
        return new Resolved(TokenSource.resolve(data, tokenizer),
                valData == null ? null : TokenSource.resolve(valData, tokenizer));
    }

    /** Whether training reads the embedded corpus (no --data). */
    boolean embedded() {
        return data == null;
    }

    /** The data settings as given, for the manifest. */
    String describe() {
        return (data == null ? "embedded Europarl corpus" : data) + (valData == null ? "" : "; validation " + valData);
    }
}
