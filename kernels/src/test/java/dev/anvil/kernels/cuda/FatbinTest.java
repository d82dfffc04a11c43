package dev.anvil.kernels.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The build ships the kernels in the jar whenever it found nvcc. */
class FatbinTest {

    /** First word of the fatbin container nvcc -fatbin writes. */
    private static final int FATBIN_MAGIC = 0xBA55ED50;

    @Test
    void fatbinIsOnTheClasspathWhenNvccWasFound() throws IOException {
        String built = System.getProperty("anvil.cuda.kernels.built", "");
        RequireCuda.assume(built.equals("true") || CudaKernels.built(),
                () -> "the build did not compile the CUDA kernels (anvil.cuda.kernels.built=" + built + ")");
        assertTrue(CudaKernels.built(), "the build compiled the kernels, but " + CudaKernels.RESOURCE
                + " is not on the class path");
        try (InputStream in = CudaKernels.class.getResourceAsStream(CudaKernels.RESOURCE)) {
            assertNotNull(in);
            byte[] image = in.readAllBytes();
            assertTrue(image.length > 1024, "fatbin of " + image.length + " bytes");
            assertEquals(FATBIN_MAGIC, ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN).getInt(0));
            // The symbol tables of the (uncompressed) cubins and PTX name every kernel, so a kernel
            // the backend resolves but the sources do not export is caught here, without a GPU.
            String text = new String(image, StandardCharsets.ISO_8859_1);
            for (String name : CudaKernels.entryPoints()) {
                assertTrue(text.contains(name + "\0") || text.contains(name + "("), "kernel " + name + " is missing");
            }
            for (String name : CudaKernels.constants()) {
                assertTrue(text.contains(name + "\0"), "constant " + name + " is missing");
            }
        }
    }
}
