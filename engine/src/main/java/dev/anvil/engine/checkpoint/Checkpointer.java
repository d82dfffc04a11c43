package dev.anvil.engine.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.anvil.engine.io.AtomicFiles;
import dev.anvil.engine.io.HfModelFiles;
import dev.anvil.engine.io.ModelWeights;
import dev.anvil.engine.io.SafeTensors;
import dev.anvil.engine.io.TensorDtype;
import dev.anvil.engine.model.GptConfig;
import dev.anvil.engine.model.GptModel;
import dev.anvil.engine.optim.AdamW;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Training checkpoints in {@code --save-dir}, one directory per step ({@code step_00000100/}):
 * the model as {@code config.json} + {@code model.safetensors} (loadable by {@code --init-from}
 * and by Hugging Face tooling), {@code optimizer.safetensors}, {@code state.json},
 * {@code manifest.json}, and {@code checksums.sha256} over all of them.
 *
 * <p>A checkpoint is written into a hidden {@code .step_….partial} directory, every file synced,
 * the checksum list written last, and the directory then renamed into place: a crash at any moment
 * leaves either no new checkpoint or a complete one, and the older ones untouched. Only the newest
 * {@code keepLast} are kept; an old one is renamed to a hidden name before it is deleted, so a crash
 * never leaves half of one in sight. What a crash leaves hidden is removed by the next write.
 */
public final class Checkpointer {

    static final String OPTIMIZER = "optimizer.safetensors";
    static final String STATE = "state.json";
    static final String MANIFEST = "manifest.json";
    private static final List<String> FILES = List.of(HfModelFiles.CONFIG_FILE, HfModelFiles.WEIGHTS_FILE, OPTIMIZER,
            STATE, MANIFEST);
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
        Files.createDirectories(saveDir);
        TrainingState state = snapshot.state();
        Path target = pathFor(state.step());
        String name = target.getFileName().toString();
        Path partial = saveDir.resolve("." + name + ".partial");
        deleteLeftovers();
        Files.createDirectories(partial);
        HfModelFiles.save(partial, snapshot.config(), snapshot.params(), TensorDtype.F32);
        haltIfAsked("weights", state.step());
        AdamW.State opt = snapshot.optimizer();
        long[] shape = {opt.m().length};
        SafeTensors.write(partial.resolve(OPTIMIZER), Map.of("step", Integer.toString(opt.step())), List.of(
                new SafeTensors.TensorData("exp_avg", TensorDtype.F32, shape, () -> FloatBuffer.wrap(opt.m())),
                new SafeTensors.TensorData("exp_avg_sq", TensorDtype.F32, shape, () -> FloatBuffer.wrap(opt.v()))));
        haltIfAsked("optimizer", state.step());
        AtomicFiles.writeString(partial.resolve(STATE), JSON.writeValueAsString(state));
        AtomicFiles.writeString(partial.resolve(MANIFEST), JSON.writeValueAsString(snapshot.manifest()));
        AtomicFiles.writeString(partial.resolve(Checksums.FILE), Checksums.list(partial, FILES));
        haltIfAsked("checksums", state.step());
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
        haltIfAsked("renamed", state.step());
        prune(state.step());
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
        String problem = Checksums.verify(dir);
        if (problem != null) {
            throw new CheckpointException(dir, problem);
        }
        ModelWeights weights = HfModelFiles.load(dir, model.config());
        TrainingState state = readState(dir);
        try (SafeTensors opt = SafeTensors.open(dir.resolve(OPTIMIZER))) {
            float[] m = opt.read("exp_avg");
            float[] v = opt.read("exp_avg_sq");
            if (m.length != weights.params().length || v.length != m.length) {
                throw new CheckpointException(dir, "optimizer state has " + m.length + " moments for "
                        + weights.params().length + " parameters");
            }
            model.writeParameters(weights.params());
            adamw.importState(new AdamW.State(state.step(), m, v));
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

    private static void haltIfAsked(String point, int step) {
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
