package dev.anvil.collective.link;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;

/**
 * A single-producer, single-consumer FIFO of data frames in a {@code /dev/shm} segment that two processes map: the
 * left neighbour writes chunks into its slots, the right neighbour reduces or copies them straight out of them.
 * The producer publishes a slot by a release store of its count ({@code head}), the consumer frees it by a release
 * store of its own ({@code tail}); a side with nothing to do spins briefly, then sleeps on the other's counter in a
 * futex, flagging that it wants a wake-up.
 *
 * <p>The consumer creates the segment, the producer maps it during the handshake, and the consumer then unlinks the
 * file: from then on the memory lives only in the two mappings and vanishes with the processes, however they end.
 * A file left by a process that died mid-handshake is removed by the next rank that creates one
 * ({@link #removeStale}).
 *
 * <pre>
 * 0     u32 magic "ANVS", u32 version, u32 slots, u32 slot payload bytes
 * 64    i32 head: slots published by the producer        128  i32 consumer is waiting on head
 * 192   i32 tail: slots freed by the consumer            256  i32 producer is waiting on tail
 * 4096  slot i at 4096 + i * stride: a DataHeader (64 bytes reserved), then the payload
 * </pre>
 */
public final class ShmFifo implements AutoCloseable {
    private static final Path DIR = Path.of("/dev/shm");
    private static final String PREFIX = "anvil-";
    private static final int MAGIC = 0x53564E41; // "ANVS"
    private static final int VERSION = 1;
    private static final long HEAD = 64;
    private static final long CONSUMER_WAITING = 128;
    private static final long TAIL = 192;
    private static final long PRODUCER_WAITING = 256;
    private static final long SLOTS_AT = 4096;
    private static final long PAYLOAD_AT = 64;
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    /** Spin this long before sleeping: a slice arrives sooner when both sides run, and on a busy core a longer spin
     *  only takes time from the process being waited for. */
    private static final long SPIN_NANOS = 20_000;
    private static final long SLEEP_MILLIS = 50;

    /** Slots per FIFO: how many slices may be in flight on one edge. */
    public static final int SLOTS = 4;

    private final Path path;
    private final Arena arena;
    private final MemorySegment memory;
    private final int slots;
    private final int slotBytes;
    private final long stride;
    private final MemorySegment timespec;
    private final ByteBuffer[] headers;
    private final MemorySegment[] payloads;
    private final boolean producer;
    private int count; // head for the producer, tail for the consumer: only this side writes it
    private int peerSeen; // the other side's count when last looked at

    private ShmFifo(Path path, FileChannel file, int slots, int slotBytes, boolean producer) throws IOException {
        this.path = path;
        this.producer = producer;
        this.slots = slots;
        this.slotBytes = slotBytes;
        this.stride = (PAYLOAD_AT + slotBytes + 4095) / 4096 * 4096;
        this.arena = Arena.ofShared();
        this.memory = file.map(FileChannel.MapMode.READ_WRITE, 0, SLOTS_AT + slots * stride, arena);
        this.timespec = arena.allocate(16, 8);
        this.headers = new ByteBuffer[slots];
        this.payloads = new MemorySegment[slots];
        for (int i = 0; i < slots; i++) {
            headers[i] = memory.asSlice(SLOTS_AT + i * stride, DataHeader.BYTES).asByteBuffer();
            payloads[i] = memory.asSlice(SLOTS_AT + i * stride + PAYLOAD_AT, slotBytes);
        }
    }

    /** Whether this system can run shared-memory links (Linux with {@code /dev/shm} and futexes). */
    public static boolean supported() {
        return Futex.available() && Files.isDirectory(DIR) && Files.isWritable(DIR);
    }

    /** Consumer side: creates and maps a new segment of {@code slots} slots of {@code slotBytes} payload bytes. */
    public static ShmFifo create(int slots, int slotBytes) throws IOException {
        removeStale();
        String name = PREFIX + ProcessHandle.current().pid() + "-"
                + HexFormat.of().formatHex(new SecureRandom().generateSeed(8));
        Path path = DIR.resolve(name);
        try (FileChannel file = FileChannel.open(path, java.util.Set.of(StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
            ShmFifo fifo = new ShmFifo(path, file, slots, slotBytes, false);
            fifo.memory.set(ValueLayout.JAVA_INT, 0, MAGIC);
            fifo.memory.set(ValueLayout.JAVA_INT, 4, VERSION);
            fifo.memory.set(ValueLayout.JAVA_INT, 8, slots);
            fifo.memory.set(ValueLayout.JAVA_INT, 12, slotBytes);
            return fifo;
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(path);
            throw e;
        }
    }

    /**
     * Producer side: maps the segment the consumer created.
     *
     * @throws IOException when it is missing (another {@code /dev/shm}) or not what the handshake said
     */
    public static ShmFifo attach(String path, int slots, int slotBytes) throws IOException {
        Path p = Path.of(path);
        if (!p.getParent().equals(DIR) || !p.getFileName().toString().startsWith(PREFIX)) {
            throw new IOException("not an Anvil shared-memory segment: " + path);
        }
        try (FileChannel file = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = SLOTS_AT + slots * ((PAYLOAD_AT + slotBytes + 4095) / 4096 * 4096);
            if (file.size() != size) {
                throw new IOException(path + " holds " + file.size() + " bytes, expected " + size);
            }
            ShmFifo fifo = new ShmFifo(p, file, slots, slotBytes, true);
            MemorySegment m = fifo.memory;
            if (m.get(ValueLayout.JAVA_INT, 0) != MAGIC || m.get(ValueLayout.JAVA_INT, 4) != VERSION
                    || m.get(ValueLayout.JAVA_INT, 8) != slots || m.get(ValueLayout.JAVA_INT, 12) != slotBytes) {
                fifo.close();
                throw new IOException(path + " is not the FIFO the handshake described");
            }
            return fifo;
        }
    }

    /** Removes the segment's file; the mappings stay valid. Idempotent. */
    public void unlink() {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // removeStale() will get it
        }
    }

    /** Deletes segment files whose creating process is gone (it died between creating and unlinking them). */
    static void removeStale() {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(DIR, PREFIX + "*")) {
            for (Path f : files) {
                String rest = f.getFileName().toString().substring(PREFIX.length());
                int dash = rest.indexOf('-');
                try {
                    long pid = Long.parseLong(dash < 0 ? rest : rest.substring(0, dash));
                    if (ProcessHandle.of(pid).isEmpty()) {
                        Files.deleteIfExists(f);
                    }
                } catch (NumberFormatException | IOException ignored) {
                    // not ours, or removed meanwhile
                }
            }
        } catch (IOException ignored) {
            // nothing to clean
        }
    }

    public String path() {
        return path.toString();
    }

    public int slots() {
        return slots;
    }

    public int slotBytes() {
        return slotBytes;
    }

    /** Producer: the header buffer of the next slot to fill (after {@link #awaitFree}). */
    ByteBuffer nextHeader() {
        return headers[count % slots].clear();
    }

    /** Producer: the payload of the next slot to fill. */
    MemorySegment nextPayload() {
        return payloads[count % slots];
    }

    /** Consumer: the header of the slot at the front (after {@link #awaitPublished}). */
    ByteBuffer frontHeader() {
        return headers[count % slots].clear();
    }

    /** Consumer: the payload of the slot at the front. */
    MemorySegment frontPayload() {
        return payloads[count % slots];
    }

    /** Producer: whether a slot is free. */
    boolean hasFree() {
        return count - (int) INT.getAcquire(memory, TAIL) < slots;
    }

    /** Consumer: whether a slot is published. */
    boolean hasPublished() {
        return (int) INT.getAcquire(memory, HEAD) != count;
    }

    /** Producer: makes the filled slot visible to the consumer, waking it if it sleeps. */
    void publish() {
        count++;
        signal(HEAD, CONSUMER_WAITING);
    }

    /** Consumer: hands the front slot back to the producer, waking it if it sleeps. */
    void free() {
        count++;
        signal(TAIL, PRODUCER_WAITING);
    }

    private void signal(long counter, long waiterFlag) {
        INT.setRelease(memory, counter, count);
        VarHandle.fullFence();
        if ((int) INT.getVolatile(memory, waiterFlag) != 0) {
            Futex.wake(memory.address() + counter);
        }
    }

    /** Whether the other side moved its counter since the last call: it is alive. */
    boolean peerProgressed() {
        int now = (int) INT.getAcquire(memory, producer ? TAIL : HEAD);
        boolean moved = now != peerSeen;
        peerSeen = now;
        return moved;
    }

    /**
     * Spins briefly, then sleeps (at most {@value #SLEEP_MILLIS} ms, so the caller keeps serving its socket) until the
     * producer has a free slot or the consumer a published one; may return early.
     */
    void await() {
        long start = System.nanoTime();
        do {
            for (int i = 0; i < 32; i++) {
                if (ready()) {
                    return;
                }
                Thread.onSpinWait();
            }
        } while (System.nanoTime() - start < SPIN_NANOS);
        long counter = producer ? TAIL : HEAD;
        long flag = producer ? PRODUCER_WAITING : CONSUMER_WAITING;
        INT.setVolatile(memory, flag, 1);
        int seen = (int) INT.getVolatile(memory, counter);
        if (!ready()) {
            Futex.await(memory.address() + counter, seen, timespec, TimeUnit.MILLISECONDS.toNanos(SLEEP_MILLIS));
        }
        INT.setVolatile(memory, flag, 0);
    }

    private boolean ready() {
        return producer ? hasFree() : hasPublished();
    }

    /** Wakes this side's thread if it sleeps in {@link #await}; callable from any thread. */
    void wakeup() {
        Futex.wake(memory.address() + (producer ? TAIL : HEAD));
    }

    /** Unmaps the segment (and removes its file if still there). Call from the owning thread, once it stopped. */
    @Override
    public void close() {
        unlink();
        arena.close();
    }
}
