package dev.anvil.kernels.cuda.driver;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Bindings of the CUDA driver API ({@code libcuda.so.1}) used by the CUDA backend. Each function is
 * bound once, to the versioned symbol that {@code cuda.h} maps its name to ({@code cuMemAlloc} is
 * {@code cuMemAlloc_v2}, ...), and every status is checked: a failure becomes a {@link CudaException}.
 *
 * <p>The driver is loaded as {@code libcuda.so.1} through the system loader first, which knows where
 * the NVIDIA driver installed it, and only then from the folders {@link LibraryLocator} searches;
 * never as the bare {@code libcuda.so}, the name CUDA's link-time stub goes by.
 *
 * <p>Device pointers ({@code CUdeviceptr}) are {@code long}s; handles (contexts, streams, modules,
 * functions, events) are {@link MemorySegment} addresses.
 */
@SuppressWarnings("restricted")  // C strings and host allocations come back as bare addresses
public final class Driver {

    /** {@code CUDA_SUCCESS}. */
    public static final int SUCCESS = 0;
    /** {@code CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT}. */
    public static final int ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    /** {@code CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR}. */
    public static final int ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    /** {@code CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR}. */
    public static final int ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    /** {@code CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN}: shared memory a block may opt in to. */
    public static final int ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    /** {@code CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES}: a kernel's opt-in to more than 48 KiB of shared memory. */
    public static final int FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    /** {@code CUDA_ERROR_NOT_READY}: {@code cuEventQuery}'s answer while the work is still running. */
    static final int STATUS_NOT_READY = 600;
    /** {@code CU_STREAM_NON_BLOCKING}: the stream does not wait for the legacy default stream. */
    public static final int STREAM_NON_BLOCKING = 0x1;
    /** {@code CU_EVENT_DISABLE_TIMING}. */
    public static final int EVENT_DISABLE_TIMING = 0x2;

    /** The only name the driver is loaded by. */
    static final List<String> FILE_NAMES = List.of("libcuda.so.1");
    static final Binder.Order ORDER = Binder.Order.SYSTEM_LOADER_FIRST;

    private static final Binder LIB = Binder.load("libcuda (the CUDA driver)", LibraryLocator.fromEnvironment(),
            FILE_NAMES, ORDER);

    private static final MethodHandle cuInit = LIB.bind("cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle cuDriverGetVersion = LIB.bind("cuDriverGetVersion",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuDeviceGetCount = LIB.bind("cuDeviceGetCount",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuDeviceGet = LIB.bind("cuDeviceGet",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle cuDeviceGetName = LIB.bind("cuDeviceGetName",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle cuDeviceGetAttribute = LIB.bind("cuDeviceGetAttribute",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle cuDevicePrimaryCtxRetain = LIB.bind("cuDevicePrimaryCtxRetain",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle cuDevicePrimaryCtxRelease = LIB.bind("cuDevicePrimaryCtxRelease_v2",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle cuCtxSetCurrent = LIB.bind("cuCtxSetCurrent",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuMemGetInfo = LIB.bind("cuMemGetInfo_v2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle cuMemAlloc = LIB.bind("cuMemAlloc_v2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle cuMemFree = LIB.bind("cuMemFree_v2",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
    private static final MethodHandle cuMemHostAlloc = LIB.bind("cuMemHostAlloc",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle cuMemFreeHost = LIB.bind("cuMemFreeHost",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuMemcpyHtoDAsync = LIB.bind("cuMemcpyHtoDAsync_v2",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
    private static final MethodHandle cuMemcpyDtoHAsync = LIB.bind("cuMemcpyDtoHAsync_v2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
    private static final MethodHandle cuMemcpyDtoDAsync = LIB.bind("cuMemcpyDtoDAsync_v2",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
    private static final MethodHandle cuMemsetD8Async = LIB.bind("cuMemsetD8Async",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS));
    private static final MethodHandle cuMemsetD32Async = LIB.bind("cuMemsetD32Async",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS));
    private static final MethodHandle cuStreamCreate = LIB.bind("cuStreamCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle cuStreamDestroy = LIB.bind("cuStreamDestroy_v2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuStreamSynchronize = LIB.bind("cuStreamSynchronize",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuEventCreate = LIB.bind("cuEventCreate",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle cuEventRecord = LIB.bind("cuEventRecord",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle cuEventSynchronize = LIB.bind("cuEventSynchronize",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    /** {@code _v2} exists only in drivers for CUDA 12.8 and newer; older ones export the original. */
    private static final MethodHandle cuEventElapsedTime = LIB.bindFirst(
            List.of("cuEventElapsedTime_v2", "cuEventElapsedTime"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    private static final MethodHandle cuEventDestroy = LIB.bind("cuEventDestroy_v2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuModuleLoadData = LIB.bind("cuModuleLoadData",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle cuModuleUnload = LIB.bind("cuModuleUnload",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuModuleGetFunction = LIB.bind("cuModuleGetFunction",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    private static final MethodHandle cuModuleGetGlobal = LIB.bind("cuModuleGetGlobal_v2",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    private static final MethodHandle cuFuncSetAttribute = LIB.bind("cuFuncSetAttribute",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle cuStreamWaitEvent = LIB.bind("cuStreamWaitEvent",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle cuEventQuery = LIB.bind("cuEventQuery",
            FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle cuLaunchKernel = LIB.bind("cuLaunchKernel",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                    JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    private static final MethodHandle cuGetErrorName = LIB.bind("cuGetErrorName",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle cuGetErrorString = LIB.bind("cuGetErrorString",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

    private Driver() {
    }

    /** Why the driver library could not be loaded, or empty when it was. */
    public static Optional<RuntimeException> loadFailure() {
        return LIB.failure();
    }

    /** The file the driver library was loaded from, where the process can tell. */
    public static Optional<Path> loadedFrom() {
        return LIB.loadedFrom();
    }

    /**
     * Throws a {@link CudaException} for a {@code CUresult} other than {@code CUDA_SUCCESS}, named
     * by the driver itself ({@code cuGetErrorName}, {@code cuGetErrorString}).
     */
    public static void check(int status, String call) {
        if (status != SUCCESS) {
            throw new CudaException(call, status, errorText(cuGetErrorName, status, "unknown CUresult"),
                    errorText(cuGetErrorString, status, "no description"));
        }
    }

    private static String errorText(MethodHandle getter, int status, String fallback) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            if ((int) getter.invokeExact(status, out) != SUCCESS) {
                return fallback;
            }
            return out.get(ADDRESS, 0).reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return fallback;  // the library itself is missing; the status code still says what failed
        }
    }

    // ---- initialization and devices ----

    /** {@code cuInit(0)}; CUDA's stub library answers {@link DriverRequirements#STATUS_STUB_LIBRARY}. */
    public static void init() {
        try {
            check((int) cuInit.invokeExact(0), "cuInit");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** The driver's CUDA version, e.g. 13000 for 13.0. */
    public static int driverVersion() {
        return intOut(cuDriverGetVersion, "cuDriverGetVersion");
    }

    /** Number of CUDA devices. */
    public static int deviceCount() {
        return intOut(cuDeviceGetCount, "cuDeviceGetCount");
    }

    private static int intOut(MethodHandle h, String call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) h.invokeExact(out), call);
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** The device handle of ordinal {@code ordinal}. */
    public static int device(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceGet.invokeExact(out, ordinal), "cuDeviceGet");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** The device's marketing name. */
    public static String deviceName(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(256);
            check((int) cuDeviceGetName.invokeExact(out, 256, device), "cuDeviceGetName");
            return out.getString(0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** A {@code CUdevice_attribute} of the device. */
    public static int deviceAttribute(int device, int attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceGetAttribute.invokeExact(out, attribute, device), "cuDeviceGetAttribute");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Retains the device's primary context (the one the CUDA runtime and cuBLAS use too). */
    public static MemorySegment primaryContextRetain(int device) {
        return handleOut("cuDevicePrimaryCtxRetain", out -> (int) cuDevicePrimaryCtxRetain.invokeExact(out, device));
    }

    /** Releases a primary context retained by {@link #primaryContextRetain}. */
    public static void primaryContextRelease(int device) {
        try {
            check((int) cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease_v2");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Makes {@code context} current on the calling thread. */
    public static void setCurrentContext(MemorySegment context) {
        try {
            check((int) cuCtxSetCurrent.invokeExact(context), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** {@code {free, total}} bytes of device memory. */
    public static long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            check((int) cuMemGetInfo.invokeExact(free, total), "cuMemGetInfo_v2");
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    // ---- memory ----

    /** Allocates {@code bytes} of device memory (256-byte aligned). */
    public static long memAlloc(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check((int) cuMemAlloc.invokeExact(out, bytes), "cuMemAlloc_v2");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Frees device memory from {@link #memAlloc}. */
    public static void memFree(long pointer) {
        try {
            check((int) cuMemFree.invokeExact(pointer), "cuMemFree_v2");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Allocates {@code bytes} of page-locked host memory, which copies reach asynchronously. */
    public static MemorySegment memHostAlloc(long bytes) {
        MemorySegment p = handleOut("cuMemHostAlloc", out -> (int) cuMemHostAlloc.invokeExact(out, bytes, 0));
        return p.reinterpret(bytes);
    }

    /** Frees memory from {@link #memHostAlloc}. */
    public static void memFreeHost(MemorySegment host) {
        try {
            check((int) cuMemFreeHost.invokeExact(host), "cuMemFreeHost");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Queues a host-to-device copy; {@code src} must be native memory. */
    public static void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyHtoDAsync_v2");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Queues a device-to-host copy; {@code dst} must be native memory. */
    public static void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoHAsync_v2");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Queues a device-to-device copy. */
    public static void memcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoDAsync_v2");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Queues setting {@code bytes} bytes to {@code value}. */
    public static void memsetD8Async(long dst, byte value, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemsetD8Async.invokeExact(dst, value, bytes, stream), "cuMemsetD8Async");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Queues setting {@code words} 32-bit words (4-byte aligned) to {@code value}. */
    public static void memsetD32Async(long dst, int value, long words, MemorySegment stream) {
        try {
            check((int) cuMemsetD32Async.invokeExact(dst, value, words, stream), "cuMemsetD32Async");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    // ---- streams and events ----

    /** Creates a stream with {@code CU_STREAM_*} flags. */
    public static MemorySegment streamCreate(int flags) {
        return handleOut("cuStreamCreate", out -> (int) cuStreamCreate.invokeExact(out, flags));
    }

    /** Destroys a stream once its work is done. */
    public static void streamDestroy(MemorySegment stream) {
        try {
            check((int) cuStreamDestroy.invokeExact(stream), "cuStreamDestroy_v2");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Waits for all work queued on {@code stream}; a kernel's failure surfaces here. */
    public static void streamSynchronize(MemorySegment stream) {
        try {
            check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Creates an event with {@code CU_EVENT_*} flags. */
    public static MemorySegment eventCreate(int flags) {
        return handleOut("cuEventCreate", out -> (int) cuEventCreate.invokeExact(out, flags));
    }

    /** Records {@code event} at the current end of {@code stream}. */
    public static void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Waits until the work before {@code event}'s last record has finished. */
    public static void eventSynchronize(MemorySegment event) {
        try {
            check((int) cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Whether the work before {@code event}'s last record has finished; never blocks. */
    public static boolean eventQuery(MemorySegment event) {
        try {
            int status = (int) cuEventQuery.invokeExact(event);
            if (status == STATUS_NOT_READY) {
                return false;
            }
            check(status, "cuEventQuery");
            return true;
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Makes work queued on {@code stream} after this call wait for {@code event}'s last record (no host wait). */
    public static void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            check((int) cuStreamWaitEvent.invokeExact(stream, event, 0), "cuStreamWaitEvent");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Milliseconds between two recorded, completed timing events. */
    public static float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            check((int) cuEventElapsedTime.invokeExact(out, start, end), "cuEventElapsedTime");
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Destroys an event. */
    public static void eventDestroy(MemorySegment event) {
        try {
            check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy_v2");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    // ---- modules and launches ----

    /** Loads a module from a cubin, PTX or fatbin image in native memory. */
    public static MemorySegment moduleLoadData(MemorySegment image) {
        return handleOut("cuModuleLoadData", out -> (int) cuModuleLoadData.invokeExact(out, image));
    }

    /** Unloads a module. */
    public static void moduleUnload(MemorySegment module) {
        try {
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** The kernel named {@code name} (an {@code extern "C"} name) in {@code module}. */
    public static MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cName = arena.allocateFrom(name);
            return handleOut("cuModuleGetFunction(" + name + ")",
                    out -> (int) cuModuleGetFunction.invokeExact(out, module, cName));
        }
    }

    /**
     * The 4-byte {@code __device__ const int} {@code name} of {@code module}, read back once (the
     * kernels publish sizes the host must agree with this way). Waits for {@code stream}.
     */
    public static int moduleGlobalInt(MemorySegment module, String name, MemorySegment stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cName = arena.allocateFrom(name);
            MemorySegment pointer = arena.allocate(JAVA_LONG), bytes = arena.allocate(JAVA_LONG);
            check((int) cuModuleGetGlobal.invokeExact(pointer, bytes, module, cName), "cuModuleGetGlobal(" + name + ")");
            if (bytes.get(JAVA_LONG, 0) != Integer.BYTES) {
                throw new IllegalStateException(name + " holds " + bytes.get(JAVA_LONG, 0) + " bytes, not an int");
            }
            MemorySegment value = arena.allocate(JAVA_INT);
            memcpyDtoHAsync(value, pointer.get(JAVA_LONG, 0), Integer.BYTES, stream);
            streamSynchronize(stream);
            return value.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** Sets a {@code CU_FUNC_ATTRIBUTE_*} of a kernel. */
    public static void funcSetAttribute(MemorySegment function, int attribute, int value) {
        try {
            check((int) cuFuncSetAttribute.invokeExact(function, attribute, value), "cuFuncSetAttribute");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /**
     * Queues a kernel. {@code params} is an array of pointers, one per kernel parameter, each
     * pointing at the parameter's value; the driver copies the values before returning.
     */
    public static void launchKernel(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY,
                                    int blockZ, int sharedBytes, MemorySegment stream, MemorySegment params) {
        try {
            check((int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                    stream, params, MemorySegment.NULL), "cuLaunchKernel");
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }

    /** A call that writes one handle through its first argument. */
    @FunctionalInterface
    private interface HandleCall {
        int call(MemorySegment out) throws Throwable;
    }

    private static MemorySegment handleOut(String name, HandleCall call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check(call.call(out), name);
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw Binder.unchecked(t);
        }
    }
}
