package dev.anvil.engine.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.anvil.engine.data.DataLoader;
import dev.anvil.engine.model.GptModel;
import dev.anvil.kernels.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code anvil eval}: the mean loss of a checkpoint on data, printed as JSON. */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Print a checkpoint's mean loss on data as JSON (default data: the embedded corpus's validation part).")
public final class EvalCommand implements Callable<Integer> {

    @Mixin
    CheckpointOption checkpoint;

    @Mixin
    DataOptions data;

    @Option(names = "--batch-size", defaultValue = "8", description = "Sequences per batch (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--seq-len", description = "Tokens per sequence (default: the model's context length)")
    Integer seqLen;

    @Option(names = "--batches", defaultValue = "20", description = "Batches to average over (default: ${DEFAULT-VALUE})")
    int batches;

    @Mixin
    BackendOptions compute;

    @Override
    public Integer call() throws IOException {
        if (batchSize <= 0 || batches <= 0) {
            throw new IllegalArgumentException("--batch-size and --batches must be positive");
        }
        try (Backend backend = compute.open(); GptModel model = checkpoint.load(backend, compute.dtype())) {
            int t = seqLen == null ? model.config().maxSeqLen() : seqLen;
            DataOptions.Resolved sources = data.resolve(model.config());
            // With --data alone, evaluate on it; with the embedded corpus, on its held-out part.
            var source = sources.val() != null ? sources.val() : sources.train();
            DataLoader loader = new DataLoader(source, batchSize, t, 0, 1);
            int[] inputs = new int[batchSize * t];
            int[] targets = new int[batchSize * t];
            double sum = 0;
            for (int i = 0; i < batches; i++) {
                loader.load(i, inputs, targets);
                sum += model.evaluate(inputs, targets, batchSize, t);
            }
            Map<String, Object> result = new LinkedHashMap<>();
            result.put("checkpoint", checkpoint.modelDir().toString());
            result.put("data", source.toString());
            result.put("loss", sum / batches);
            result.put("tokens", (long) batches * batchSize * t);
            System.out.println(new ObjectMapper().writeValueAsString(result));
            return 0;
        }
    }
}
