package dev.anvil.engine.checkpoint;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.anvil.engine.io.AtomicFiles;
import dev.anvil.engine.io.SafeTensors;
import dev.anvil.engine.io.TensorDtype;
import dev.anvil.engine.optim.AdamW;
import dev.anvil.engine.optim.ParameterShard;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A checkpoint's optimizer state, in one of two layouts, either of which can be read back into any
 * {@link ParameterShard}: that is how a run resumes on a different number of ranks.
 *
 * <ul>
 *   <li>Whole: {@code optimizer.safetensors} holds {@code exp_avg} and {@code exp_avg_sq} for every
 *       parameter, in layout order.</li>
 *   <li>Sharded (ZeRO-1): each rank writes {@code optimizer-RRRRR-of-NNNNN.safetensors} with the
 *       same tensors over its shard, packed, plus {@code master}, its fp32 master weights, for a BF16
 *       model; {@code optimizer.index.json} names the files and the runs of the parameter buffer each
 *       one holds, in the order they are packed.</li>
 * </ul>
 */
public final class OptimizerFiles {

    /** The whole layout's file. */
    public static final String WHOLE = "optimizer.safetensors";
    /** The sharded layout's index. */
    public static final String INDEX = "optimizer.index.json";
    public static final String EXP_AVG = "exp_avg";
    public static final String EXP_AVG_SQ = "exp_avg_sq";
    /** The fp32 master weights, in the sharded layout of a BF16 model. */
    public static final String MASTER = "master";
    private static final String FORMAT = "anvil-zero-1";
    private static final Pattern SHARD_NAME = Pattern.compile("optimizer-\\d{5}-of-\\d{5}\\.safetensors");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    /**
     * {@code optimizer.index.json}.
     *
     * @param format     {@value #FORMAT}
     * @param step       optimizer steps taken
     * @param parameters length of the parameter buffer
     * @param tensors    the tensors every shard file holds
     * @param shards     the files, by rank
     */
    record Index(String format, int step, long parameters, List<String> tensors, List<Shard> shards) {
    }

    /**
     * One rank's file and the runs {@code [offset, length]} of the parameter buffer it holds, packed
     * in this order.
     */
    record Shard(String file, List<long[]> runs) {
    }

    private OptimizerFiles() {
    }

    /** The file rank {@code rank} of {@code ranks} writes. */
    public static String shardFile(int rank, int ranks) {
        return String.format(Locale.ROOT, "optimizer-%05d-of-%05d.safetensors", rank, ranks);
    }

    /** The files of the sharded layout for {@code ranks} ranks: the index, then each rank's. */
    public static List<String> shardedFiles(int ranks) {
        List<String> files = new ArrayList<>(List.of(INDEX));
        for (int r = 0; r < ranks; r++) {
            files.add(shardFile(r, ranks));
        }
        return files;
    }

    /** Writes the whole layout's file into {@code dir}. */
    static void writeWhole(Path dir, AdamW.State state) throws IOException {
        long[] shape = {state.m().length};
        SafeTensors.write(dir.resolve(WHOLE), Map.of("step", Integer.toString(state.step())), List.of(
                new SafeTensors.TensorData(EXP_AVG, TensorDtype.F32, shape, () -> FloatBuffer.wrap(state.m())),
                new SafeTensors.TensorData(EXP_AVG_SQ, TensorDtype.F32, shape, () -> FloatBuffer.wrap(state.v()))));
    }

    /**
     * Writes rank {@code rank}'s file of the sharded layout into {@code dir}.
     *
     * @param state  the moments of its shard, packed
     * @param master the fp32 master weights of its shard, packed, or {@code null} (an FP32 model)
     */
    static void writeShard(Path dir, int rank, int ranks, AdamW.State state, float[] master) throws IOException {
        long[] shape = {state.m().length};
        List<SafeTensors.TensorData> tensors = new ArrayList<>(List.of(
                new SafeTensors.TensorData(EXP_AVG, TensorDtype.F32, shape, () -> FloatBuffer.wrap(state.m())),
                new SafeTensors.TensorData(EXP_AVG_SQ, TensorDtype.F32, shape, () -> FloatBuffer.wrap(state.v()))));
        if (master != null) {
            tensors.add(new SafeTensors.TensorData(MASTER, TensorDtype.F32, shape, () -> FloatBuffer.wrap(master)));
        }
        SafeTensors.write(dir.resolve(shardFile(rank, ranks)), Map.of("step", Integer.toString(state.step()),
                "rank", Integer.toString(rank), "ranks", Integer.toString(ranks)), tensors);
    }

    /**
     * Writes the sharded layout's index into {@code dir}.
     *
     * @param shards every rank's shard, by rank
     * @param master whether the files hold master weights
     */
    static void writeIndex(Path dir, int step, long parameters, List<ParameterShard> shards, boolean master)
            throws IOException {
        List<Shard> entries = new ArrayList<>();
        for (int r = 0; r < shards.size(); r++) {
            entries.add(new Shard(shardFile(r, shards.size()),
                    shards.get(r).runs().stream().map(run -> new long[] {run.offset(), run.length()}).toList()));
        }
        List<String> tensors = master ? List.of(EXP_AVG, EXP_AVG_SQ, MASTER) : List.of(EXP_AVG, EXP_AVG_SQ);
        AtomicFiles.writeString(dir.resolve(INDEX), JSON.writeValueAsString(
                new Index(FORMAT, step, parameters, tensors, entries)));
    }

    /**
     * Opens the optimizer state of checkpoint {@code dir}, in either layout, and checks that it holds
     * exactly one value of each tensor for each of {@code parameters} parameters.
     *
     * @throws CheckpointException naming the file, if one is missing, malformed or inconsistent
     */
    static Reader open(Path dir, long parameters) throws IOException {
        return Files.exists(dir.resolve(INDEX)) ? openSharded(dir, parameters) : openWhole(dir, parameters);
    }

    private static Reader openWhole(Path dir, long parameters) throws IOException {
        Reader reader = new Reader(dir, List.of(EXP_AVG, EXP_AVG_SQ));
        try {
            reader.add(WHOLE, List.<long[]>of(new long[] {0, parameters}));
            reader.checkCovers(parameters);
            return reader;
        } catch (IOException | RuntimeException e) {
            reader.close();
            throw e;
        }
    }

    private static Reader openSharded(Path dir, long parameters) throws IOException {
        Index index;
        try {
            index = JSON.readValue(dir.resolve(INDEX).toFile(), Index.class);
        } catch (JacksonException e) {
            throw new CheckpointException(dir, INDEX + " is malformed: " + e.getOriginalMessage());
        }
        if (!FORMAT.equals(index.format()) || index.tensors() == null || index.shards() == null
                || !index.tensors().containsAll(List.of(EXP_AVG, EXP_AVG_SQ))) {
            throw new CheckpointException(dir, INDEX + " is not an index of " + FORMAT + " optimizer shards");
        }
        if (index.parameters() != parameters) {
            throw new CheckpointException(dir, "the optimizer state is for " + index.parameters()
                    + " parameters, the model has " + parameters);
        }
        Reader reader = new Reader(dir, index.tensors());
        try {
            for (Shard s : index.shards()) {
                if (s == null || s.file() == null || !SHARD_NAME.matcher(s.file()).matches() || s.runs() == null) {
                    throw new CheckpointException(dir, INDEX + " names an optimizer shard badly: " + s);
                }
                reader.add(s.file(), s.runs());
            }
            reader.checkCovers(parameters);
            return reader;
        } catch (IOException | RuntimeException e) {
            reader.close();
            throw e;
        }
    }

    /** Reads the optimizer state of any shard of the parameter buffer from the files of a checkpoint. */
    static final class Reader implements AutoCloseable {

        /** A run of the parameter buffer stored in {@code file} from element {@code local} on. */
        private record Source(long offset, long length, long local, SafeTensors file) {
            long end() {
                return offset + length;
            }
        }

        private final Path dir;
        private final List<String> tensors;
        private final List<SafeTensors> files = new ArrayList<>();
        private final List<Source> sources = new ArrayList<>();

        private Reader(Path dir, List<String> tensors) {
            this.dir = dir;
            this.tensors = List.copyOf(tensors);
        }

        private void add(String name, List<long[]> runs) throws IOException {
            SafeTensors file;
            try {
                file = SafeTensors.open(dir.resolve(name));
            } catch (NoSuchFileException e) {
                throw new CheckpointException(dir, name + " is missing");
            }
            files.add(file);
            long local = 0;
            for (long[] run : runs) {
                if (run == null || run.length != 2 || run[0] < 0 || run[1] <= 0) {
                    throw new CheckpointException(dir, INDEX + " gives " + name + " a malformed run");
                }
                sources.add(new Source(run[0], run[1], local, file));
                local += run[1];
            }
            for (String t : tensors) {
                SafeTensors.TensorInfo info = file.tensors().get(t);
                if (info == null || info.dtype() != TensorDtype.F32 || info.numel() != local) {
                    throw new CheckpointException(dir, name + " should hold " + local + " F32 values of " + t
                            + ", holds " + (info == null ? "none" : info.numel() + " " + info.dtype()));
                }
            }
        }

        /** Checks that the runs tile {@code [0, parameters)}: every parameter exactly once. */
        private void checkCovers(long parameters) throws CheckpointException {
            sources.sort(Comparator.comparingLong(Source::offset));
            long next = 0;
            for (Source s : sources) {
                if (s.offset() != next) {
                    throw new CheckpointException(dir, "the optimizer shards " + (s.offset() < next ? "overlap" : "leave a gap")
                            + " at parameter " + Math.min(s.offset(), next));
                }
                next = s.end();
            }
            if (next != parameters) {
                throw new CheckpointException(dir, "the optimizer shards cover " + next + " of " + parameters + " parameters");
            }
        }

        /** Whether the state includes fp32 master weights (a sharded BF16 model's). */
        boolean hasMaster() {
            return tensors.contains(MASTER);
        }

        /** Tensor {@code tensor}'s values over {@code target}, packed. */
        float[] read(String tensor, ParameterShard target) {
            float[] out = new float[Math.toIntExact(target.size())];
            int first = 0;
            for (ParameterShard.Run run : target.runs()) {
                while (sources.get(first).end() <= run.offset()) {
                    first++;
                }
                for (int i = first; i < sources.size() && sources.get(i).offset() < run.end(); i++) {
                    Source s = sources.get(i);
                    long start = Math.max(s.offset(), run.offset());
                    long end = Math.min(s.end(), run.end());
                    MemorySegment values = s.file().bytes(tensor);
                    MemorySegment.copy(values, F32_LE, (s.local() + start - s.offset()) * Float.BYTES,
                            out, (int) (run.local() + start - run.offset()), (int) (end - start));
                }
            }
            return out;
        }

        @Override
        public void close() {
            files.forEach(SafeTensors::close);
        }
    }
}
