package dev.anvil.engine.cli;

import dev.anvil.engine.data.DocumentSplit;
import dev.anvil.engine.data.Prepare;
import dev.anvil.engine.data.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code anvil prepare}: tokenizes text into llm.c-format train and validation shards. */
@Command(name = "prepare", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Tokenize UTF-8 text files (plain or .gz, any size) into train and validation token shards.")
public final class PrepareCommand implements Callable<Integer> {

    @Parameters(arity = "1..*", paramLabel = "TEXT", description = "Input text files")
    List<Path> inputs;

    @Option(names = {"--out", "-o"}, required = true, paramLabel = "DIR", description = "Where the shards go")
    Path out;

    @Option(names = "--prefix", defaultValue = "",
            description = "Shard name prefix: PREFIX_train_000000.bin (default: none: train_000000.bin, val_000000.bin)")
    String prefix;

    @Option(names = "--tokenizer", defaultValue = "gpt2", description = "gpt2 (BPE, for GPT-2 vocabularies) or bytes (for small models like tiny) (default: ${DEFAULT-VALUE})")
    String tokenizer;

    @Option(names = "--val-fraction", defaultValue = "0.05", description = "Share of tokens held out for validation (default: ${DEFAULT-VALUE})")
    double valFraction;

    @Option(names = "--val-tokens", description = "Hold out exactly the first N tokens instead of a fraction")
    Long valTokens;

    @Option(names = "--shard-size", defaultValue = "100000000", description = "Tokens per shard (default: ${DEFAULT-VALUE})")
    int shardSize;

    @Option(names = "--documents", defaultValue = "PARAGRAPHS", description = "How text splits into documents: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})")
    DocumentSplit documents;

    @Option(names = "--threads", description = "Tokenizing threads (default: all cores)")
    Integer threads;

    @Override
    public Integer call() throws IOException {
        Tokenizer tok = switch (tokenizer) {
            case "gpt2" -> Tokenizer.gpt2();
            case "bytes" -> Tokenizer.bytes();
            default -> throw new IllegalArgumentException("--tokenizer must be gpt2 or bytes, got '" + tokenizer + "'");
        };
        Prepare.Options options = Prepare.Options.defaults(out)
                .withPrefix(prefix)
                .withTokenizer(tok)
                .withShardSize(shardSize)
                .withDocuments(documents)
                .withVal(valTokens != null ? new Prepare.ValSplit.FirstTokens(valTokens) : new Prepare.ValSplit.Fraction(valFraction));
        if (threads != null) {
            options = options.withThreads(threads);
        }
        Prepare.Summary summary = Prepare.run(inputs, options);
        System.out.printf(Locale.ROOT, "%,d documents: %,d training tokens in %d shard(s), %,d validation tokens in %d shard(s), in %s%n",
                summary.documents(), summary.trainTokens(), summary.trainFiles().size(), summary.valTokens(),
                summary.valFiles().size(), out);
        return 0;
    }
}
