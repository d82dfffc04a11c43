package dev.anvil.kernels.cuda.driver;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Files that look like shared libraries, made by the tests that need them. */
public final class FakeLibraries {

    private FakeLibraries() {
    }

    /**
     * Writes a 64-bit ELF header at {@code file}: not loadable (it is no shared object), but with a
     * non-executable-stack program header, so the JVM tries it without warning about stack guards.
     */
    public static Path elf64(Path file) throws IOException {
        return header(file, (byte) 2);
    }

    /** Writes the start of a 32-bit ELF file at {@code file}. */
    public static Path elf32(Path file) throws IOException {
        return header(file, (byte) 1);
    }

    private static Path header(Path file, byte elfClass) throws IOException {
        Files.createDirectories(file.getParent());
        ByteBuffer elf = ByteBuffer.allocate(64 + 56).order(ByteOrder.LITTLE_ENDIAN);
        elf.put(new byte[] {0x7F, 'E', 'L', 'F', elfClass, 1, 1});
        elf.putLong(32, 64);             // e_phoff: the program header follows
        elf.putShort(54, (short) 56);    // e_phentsize
        elf.putShort(56, (short) 1);     // e_phnum
        elf.putInt(64, 0x6474E551);      // p_type PT_GNU_STACK
        elf.putInt(68, 6);               // p_flags PF_R | PF_W
        return Files.write(file, elf.array());
    }

    /** Whether a C compiler ({@code cc}) is on the PATH. */
    public static boolean compilerAvailable() {
        try {
            Process p = new ProcessBuilder("cc", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /** Compiles {@code source} (C) into the shared library {@code library}, with {@code cc}. */
    public static Path compile(Path library, String source) throws IOException, InterruptedException {
        Files.createDirectories(library.getParent());
        Path c = Files.writeString(library.resolveSibling(library.getFileName() + ".c"), source);
        Process p = new ProcessBuilder("cc", "-shared", "-fPIC", "-o", library.toString(), c.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("cc failed on " + c + ": " + out);
        }
        return library;
    }
}
