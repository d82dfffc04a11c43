package dev.anvil.engine.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.anvil.engine.io.AtomicFiles;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.TensorDtype;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.ParameterShard;
import dev.anvil.kernels.DType;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Training checkpoints in {@code --save-dir}, one directory per step ({@code step_00000100/}):
 * the model as {@code config.json} + {@code model.safetensors} (loadable by {@code --init-from}
 * and by Hugging Face tooling), the optimizer state ({@code optimizer.safetensors}, or per-rank
 * shards and their index: see {@link OptimizerFiles}), {@code state.json}, {@code manifest.json},
 * and {@code checksums.sha256} over all of them.
 *
 * <p>A checkpoint is written into a hidden {@code .step_….partial} directory, every file synced,
 * the checksum list written last, and the directory then renamed into place: a crash at any moment
 * leaves either no new checkpoint or a complete one, and the older ones untouched. Only the newest
 * {@code keepLast} are kept; an old one is renamed to a hidden name before it is deleted, so a crash
 * never leaves half of one in sight. What a crash leaves hidden is removed by the next write.
 */
public final class Checkpointer {

    static final String STATE = "state.json";
    static final String MANIFEST = "manifest.json";
    /** The files besides the optimizer state. */
    static final List<String> MODEL_FILES = List.of(HfModelFiles.CONFIG_FILE, HfModelFiles.WEIGHTS_FILE, STATE,
            MANIFEST);
    private static final Pattern NAME = Pattern.compile("step_(\\d{8,})");
    /** What a crash during a write or a prune leaves behind. */
    private static final Pattern LEFTOVER = Pattern.compile("\\.step_\\d{8,}\\.(partial|deleting)");
    /**
     * Test hook for crash tests: {@code -Danvil.test.haltCheckpointAt=POINT@STEP} halts the JVM at once, as
     * {@code kill -9} would (no shutdown hook, no {@code finally}), at that point of writing the checkpoint of
     * STEP. The points, in order: {@code weights} (config and weights written in the partial directory),
     * {@code optimizer}, {@code checksums} (complete, not yet renamed), {@code renamed} (in place, old ones not yet
     * pruned), {@code pruning} (the oldest renamed aside, not yet deleted).
     */
    public static final String HALT_PROPERTY = "anvil.test.haltCheckpointAt";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Path saveDir;
    private final int keepLast;

    /**
     * @param keepLast how many checkpoints to keep (the newest); 0 keeps all
     */
    public Checkpointer(Path saveDir, int keepLast) {
        if (keepLast < 0) {
            throw new IllegalArgumentException("--keep-last must be 0 (keep all) or positive, got " + keepLast);
        }
        this.saveDir = saveDir;
        this.keepLast = keepLast;
    }

    /** The directory checkpoints go to. */
    public Path saveDir() {
        return saveDir;
    }

    /**
     * Everything a checkpoint holds, copied to the host: taking it is quick, writing it is the slow
     * part, so training can go on while {@link #write} runs (see {@link BackgroundCheckpoints}).
     *
     * @param params the model's fp32 weights (the master weights when it trains in bf16)
     */
    public record Snapshot(GptConfig config, float[] params, AdamW.State optimizer, TrainingState state,
                           RunManifest manifest) {
    }

    /** Copies what a checkpoint of {@code model} and {@code adamw} at {@code state.step()} holds. */
    public static Snapshot snapshot(GptModel model, AdamW adamw, TrainingState state, RunManifest manifest) {
        return new Snapshot(model.config(), model.readParameters(), adamw.exportState(), state, manifest);
    }

    /** Writes a checkpoint of {@code model} and {@code adamw} at {@code state.step()} and prunes old ones. */
    public Path save(GptModel model, AdamW adamw, TrainingState state, RunManifest manifest) throws IOException {
        return write(snapshot(model, adamw, state, manifest));
    }

    /** Where the checkpoint of step {@code step} goes. */
    public Path pathFor(int step) {
        return saveDir.resolve(String.format("step_%08d", step));
    }

    /** Writes a snapshot as a checkpoint directory, atomically, and prunes old ones. */
    public Path write(Snapshot snapshot) throws IOException {
        int step = snapshot.state().step();
        Path partial = begin(step);
        writeModel(partial, snapshot.config(), snapshot.params(), snapshot.state(), snapshot.manifest());
        OptimizerFiles.writeWhole(partial, snapshot.optimizer());
        haltIfAsked("optimizer", step);
        List<String> files = new ArrayList<>(MODEL_FILES);
        files.add(OptimizerFiles.WHOLE);
        return commit(step, files);
    }

    /**
     * Starts the checkpoint of {@code step}: returns the empty hidden directory its files go into,
     * first removing the partial and half-pruned checkpoints a crash may have left (so no other write
     * may be under way in this directory).
     */
    public Path begin(int step) throws IOException {
        Files.createDirectories(saveDir);
        deleteLeftovers();
        Path partial = partialFor(step);
        Files.createDirectories(partial);
        return partial;
    }

    Path partialFor(int step) {
        return saveDir.resolve("." + pathFor(step).getFileName() + ".partial");
    }

    /** Writes the model, the training state and the manifest into a directory from {@link #begin}. */
    static void writeModel(Path partial, GptConfig config, float[] params, TrainingState state, RunManifest manifest)
            throws IOException {
        HfModelFiles.save(partial, config, params, TensorDtype.F32);
        haltIfAsked("weights", state.step());
        AtomicFiles.writeString(partial.resolve(STATE), JSON.writeValueAsString(state));
        AtomicFiles.writeString(partial.resolve(MANIFEST), JSON.writeValueAsString(manifest));
    }

    /**
     * Completes the checkpoint of {@code step} begun by {@link #begin}, whose {@code files} are all
     * written: lists their checksums, renames the directory into place and prunes old checkpoints.
     */
    public Path commit(int step, List<String> files) throws IOException {
        Path partial = partialFor(step);
        Path target = pathFor(step);
        String name = target.getFileName().toString();
        AtomicFiles.writeString(partial.resolve(Checksums.FILE), Checksums.list(partial, files));
        haltIfAsked("checksums", step);
        if (Files.exists(target)) {
            // Same step saved again (a rerun): move the old one aside first; rename cannot replace a directory.
            Path old = saveDir.resolve("." + name + ".old");
            deleteTree(old);
            Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
            Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
            deleteTree(old);
        } else {
            Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
        }
        AtomicFiles.syncDirectory(saveDir);
        haltIfAsked("renamed", step);
        prune(step);
        return target;
    }

    /** Checkpoint directories in {@code saveDir}, oldest first. */
    public List<Path> list() throws IOException {
        if (!Files.isDirectory(saveDir)) {
            return List.of();
        }
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(saveDir, Files::isDirectory)) {
            for (Path dir : dirs) {
                if (NAME.matcher(dir.getFileName().toString()).matches()) {
                    found.add(dir);
                }
            }
        }
        found.sort(Comparator.comparing(p -> p.getFileName().toString()));
        return found;
    }

    /**
     * The newest checkpoint whose files all match their checksums; each newer one that does not is
     * reported to {@code warn} and skipped.
     */
    public Optional<Path> latestValid(Consumer<String> warn) throws IOException {
        List<Path> all = list();
        for (int i = all.size() - 1; i >= 0; i--) {
            String problem = Checksums.verify(all.get(i));
            if (problem == null) {
                return Optional.of(all.get(i));
            }
            warn.accept("skipping checkpoint " + all.get(i) + ": " + problem);
        }
        return Optional.empty();
    }

    /** Reads a checkpoint's training state. */
    public static TrainingState readState(Path dir) throws IOException {
        return JSON.readValue(dir.resolve(STATE).toFile(), TrainingState.class);
    }

    /**
     * Loads a checkpoint into {@code model} and {@code adamw} after checking its checksums and that
     * its shapes are the model's.
     *
     * @return its training state
     * @throws CheckpointException if it is incomplete, corrupt or of another shape
     */
    public static TrainingState restore(Path dir, GptModel model, AdamW adamw) throws IOException {
        return restore(dir, model, adamw, null);
    }

    /**
     * {@link #restore(Path, GptModel, AdamW)} into an optimizer over any shard of the parameters,
     * whatever the layout the state was saved in (whole, or sharded over any number of ranks): the
     * state of {@code adamw}'s shard is cut out of it exactly.
     *
     * <p>The exact weights are the master weights a sharded BF16 run saved with its optimizer state
     * when there are any, else {@code model.safetensors}.
     *
     * @param master receives the fp32 master weights of {@code adamw}'s shard, packed, for an
     *               optimizer that keeps them itself; {@code null} when the model holds them
     */
    public static TrainingState restore(Path dir, GptModel model, AdamW adamw, Consumer<float[]> master)
            throws IOException {
        String problem = Checksums.verify(dir);
        if (problem != null) {
            throw new CheckpointException(dir, problem);
        }
        float[] weights = HfModelFiles.load(dir, model.config()).params();
        TrainingState state = readState(dir);
        ParameterShard shard = adamw.shard();
        try (OptimizerFiles.Reader opt = OptimizerFiles.open(dir, weights.length)) {
            // A BF16 model without master weights needs only their rounding, which model.safetensors holds.
            boolean exact = model.dtype() == DType.FP32 || model.masterWeights() != null;
            if (opt.hasMaster() && exact) {
                weights = opt.read(OptimizerFiles.MASTER, ParameterShard.whole(weights.length));
            }
            model.writeParameters(weights);
            if (master != null) {
                master.accept(opt.hasMaster() ? opt.read(OptimizerFiles.MASTER, shard) : shard.gather(weights));
            }
            adamw.importState(new AdamW.State(state.step(), opt.read(OptimizerFiles.EXP_AVG, shard),
                    opt.read(OptimizerFiles.EXP_AVG_SQ, shard)));
        }
        return state;
    }

    private void prune(int step) throws IOException {
        if (keepLast == 0) {
            return;
        }
        List<Path> all = list();
        for (int i = 0; i < all.size() - keepLast; i++) {
            Path doomed = saveDir.resolve("." + all.get(i).getFileName() + ".deleting");
            Files.move(all.get(i), doomed, StandardCopyOption.ATOMIC_MOVE);
            haltIfAsked("pruning", step);
            deleteTree(doomed);
        }
    }

    /** Removes the partial checkpoints and half-pruned ones a crash left (one writer per directory at a time). */
    private void deleteLeftovers() throws IOException {
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(saveDir,
                p -> LEFTOVER.matcher(p.getFileName().toString()).matches())) {
            for (Path dir : dirs) {
                deleteTree(dir);
            }
        }
    }

    static void haltIfAsked(String point, int step) {
        if ((point + "@" + step).equals(System.getProperty(HALT_PROPERTY))) {
            Runtime.getRuntime().halt(137); // 128 + SIGKILL, as the shell reports a kill -9
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
