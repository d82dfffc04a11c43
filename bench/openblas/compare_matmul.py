#!/usr/bin/python3
"""Anvil's CPU matmul against OpenBLAS's sgemm, side by side in one run, shape by shape.

For each shape n x c x oc of the model's linear layers it times the three GEMMs of a layer, as
OpenBLAS's cblas_sgemm (called through numpy's BLAS) and as JMH's MatmulBenchmark without bias
(Anvil), and prints GFLOP/s and the ratio. Both sides do the same work, a layer's:

    forward  out   = inp · weightᵀ     (n x c)  · (c x oc)    written
    dinp     dinp += dout · weight     (n x oc) · (oc x c)    added into
    dweight  dw   += doutᵀ · inp       (oc x n) · (n x c)     added into

and report the same statistics, from the times of single calls: the fastest (what the code can do
when the machine leaves it alone) and the median (what a run meets on a shared or virtual machine,
where neighbours slow some calls down). JMH runs in sample mode for that.

With --paired both sides run in one Java process instead (dev.anvil.bench.blas.PairedSgemm calls
OpenBLAS through the FFM API), in alternating windows, product by product: a slow spell of the
machine then falls on both sides alike. Use it for differences of a few percent on a shared or
virtual machine, whose speed drifts by more than that between the two halves of a plain run.

OpenBLAS runs with as many threads as Anvil (2 by default) and, where the CPU has AVX-512 but
OpenBLAS does not recognise it (it falls back to SSE kernels on CPUs newer than itself), with
OPENBLAS_CORETYPE set to its AVX-512 kernels. Debian's numpy links the reference BLAS unless
OpenBLAS is installed; the script finds libopenblas (Debian's openblas-pthread directory, or
OPENBLAS_DIR) and re-runs itself on it, and refuses to compare against anything else.

Usage (build first: ./mvnw -q package -DskipTests; run alone on the machine: cpu-exclusive):
    cpu-exclusive /usr/bin/python3 bench/openblas/compare_matmul.py [--threads 2] [--rounds 3] [--shapes 1024x384x1152,...]
    cpu-exclusive /usr/bin/python3 bench/openblas/compare_matmul.py --paired [--windows 10] [--shapes ...]
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
JAR = os.path.join(REPO, "bench", "target", "benchmarks.jar")

# The speed-bar model (C=384, V=50304, B·T=1024) and GPT-2 small's (C=768): QKV, attention
# projection, MLP up and down, LM head.
DEFAULT_SHAPES = ["1024x384x1152", "1024x384x384", "1024x384x1536", "1024x1536x384", "1024x384x50304",
                  "1024x768x2304", "1024x768x3072", "1024x3072x768"]
OPENBLAS_DIRS = ["/usr/lib/x86_64-linux-gnu/openblas-pthread", "/usr/lib/aarch64-linux-gnu/openblas-pthread"]
AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}


def loaded_blas():
    """Paths of the BLAS libraries this process has mapped (numpy loads one at import)."""
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if "blas" in line and "/" in line})


def openblas_core(paths):
    """OpenBLAS's chosen kernels, its configuration string, the library and its path, or None if no
    OpenBLAS is loaded."""
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode(), lib.openblas_get_config().decode(), lib, path
        except (OSError, AttributeError):
            continue
    return None


def cpu_flags():
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def ensure_openblas(threads):
    """Re-executes this script on OpenBLAS with the right kernels and thread count if needed."""
    import numpy  # noqa: F401  (loads the BLAS numpy was linked against)
    core = openblas_core(loaded_blas())
    if core is None:
        if os.environ.get("ANVIL_OPENBLAS_REEXEC"):
            sys.exit("numpy still does not load OpenBLAS from LD_LIBRARY_PATH=%s" % os.environ.get("LD_LIBRARY_PATH"))
        candidates = ([os.environ["OPENBLAS_DIR"]] if os.environ.get("OPENBLAS_DIR") else []) + OPENBLAS_DIRS
        found = next((d for d in candidates if os.path.exists(os.path.join(d, "libblas.so.3"))), None)
        if found is None:
            sys.exit("numpy uses %s, not OpenBLAS: install it (apt-get install libopenblas0-pthread) or point "
                     "OPENBLAS_DIR at a directory holding OpenBLAS's libblas.so.3" % (loaded_blas() or "no BLAS"))
        env = dict(os.environ, LD_LIBRARY_PATH=found + ":" + os.environ.get("LD_LIBRARY_PATH", ""),
                   ANVIL_OPENBLAS_REEXEC="1")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    if "avx512f" in cpu_flags() and core[0].lower() not in AVX512_CORES and "OPENBLAS_CORETYPE" not in env:
        # OpenBLAS predates this CPU and fell back to older kernels: ask for its AVX-512 ones.
        env["OPENBLAS_CORETYPE"] = "SkylakeX"
        env["ANVIL_OPENBLAS_DETECTED"] = core[0]
    if env != dict(os.environ):
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    return core


def call_seconds(f, seconds):
    """(fastest, median) seconds of single calls of f over `seconds`, after a warm-up."""
    for _ in range(3):
        f()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[0], times[len(times) // 2]


def openblas_gflops(lib, shape, seconds):
    """cblas_sgemm on the three products with Anvil's β: the forward writes (no bias: the GEMM alone),
    dinp and dweight add into their outputs, as a layer's backward pass does."""
    import numpy as np
    n, c, oc = shape
    rng = np.random.default_rng(1)
    x = rng.random((n, c), dtype=np.float32) * 2 - 1
    w = rng.random((oc, c), dtype=np.float32) * 2 - 1
    dy = rng.random((n, oc), dtype=np.float32) * 2 - 1
    out, dx, dw = np.zeros((n, oc), np.float32), np.zeros((n, c), np.float32), np.zeros((oc, c), np.float32)
    row_major, plain, transposed = 101, 111, 112

    def sgemm(ta, tb, m, nn, k, a, lda, b, ldb, beta, cc, ldc):
        p = ctypes.c_void_p
        return lambda: lib.cblas_sgemm(row_major, ta, tb, m, nn, k, ctypes.c_float(1.0), p(a.ctypes.data), lda,
                                       p(b.ctypes.data), ldb, ctypes.c_float(beta), p(cc.ctypes.data), ldc)

    products = {
        # out[n, oc] = x · wᵀ
        "forward": sgemm(plain, transposed, n, oc, c, x, c, w, c, 0.0, out, oc),
        # dx[n, c] += dy · w
        "dinp": sgemm(plain, plain, n, c, oc, dy, oc, w, c, 1.0, dx, c),
        # dw[oc, c] += dyᵀ · x
        "dweight": sgemm(transposed, plain, oc, c, n, dy, oc, x, c, 1.0, dw, c),
    }
    flop = 2.0 * n * c * oc
    return {name: tuple(flop / t / 1e9 for t in call_seconds(f, seconds)) for name, f in products.items()}


def anvil_gflops(shapes, threads, java, seconds):
    """Runs JMH's MatmulBenchmark without bias (the GEMMs alone) on every shape in sample mode, which
    times single calls; returns {shape: {product: (GFLOP/s of the fastest call, of the median)}}."""
    if not os.path.exists(JAR):
        sys.exit("%s is missing: build first (./mvnw -q package -DskipTests)" % JAR)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = f.name
    iterations = 3
    cmd = [java, "-jar", JAR, r"MatmulBenchmark\.(forward|backwardInput|backwardWeight)$",
           "-p", "shape=" + ",".join(shapes), "-p", "bias=false", "-p", "threads=%d" % threads,
           "-bm", "sample", "-tu", "us", "-f", "1", "-wi", "2", "-w", "1", "-i", str(iterations),
           "-r", "%dms" % max(100, int(1000 * seconds / iterations)), "-rf", "json", "-rff", result]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(result) as f:
        runs = json.load(f)
    os.unlink(result)
    product = {"forward": "forward", "backwardInput": "dinp", "backwardWeight": "dweight"}
    out = {}
    for r in runs:
        n, c, oc = map(int, r["params"]["shape"].split("x"))
        us = r["primaryMetric"]["scorePercentiles"]
        gflop = 2.0 * n * c * oc / 1e9
        out.setdefault(r["params"]["shape"], {})[product[r["benchmark"].rsplit(".", 1)[1]]] = (
            gflop / (us["0.0"] * 1e-6), gflop / (us["50.0"] * 1e-6))
    return out


def paired_gflops(library, shapes, threads, java, seconds, windows):
    """Both sides in one Java process, alternating windows (see --paired); returns (OpenBLAS's, Anvil's)
    {shape: {product: (GFLOP/s of the fastest call, of the median)}}."""
    if not os.path.exists(JAR):
        sys.exit("%s is missing: build first (./mvnw -q package -DskipTests)" % JAR)
    cmd = [java, "--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp", JAR,
           "dev.anvil.bench.blas.PairedSgemm", library, str(threads), str(seconds), str(windows), ",".join(shapes)]
    lines = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.split("\n")
    blas, anvil = {}, {}
    for line in lines:
        fields = line.split()
        if len(fields) == 6:
            shape, product, bf, bm, af, am = fields
            blas.setdefault(shape, {})[product] = (float(bf), float(bm))
            anvil.setdefault(shape, {})[product] = (float(af), float(am))
    return blas, anvil


def keep_best(best, rates):
    """Raises best[shape][product] to rates[shape][product] wherever that is higher, statistic by statistic."""
    for shape, products in rates.items():
        for product, rate in products.items():
            old = best.setdefault(shape, {}).get(product, (0.0, 0.0))
            best[shape][product] = tuple(max(o, r) for o, r in zip(old, rate))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    parser.add_argument("--shapes", default=",".join(DEFAULT_SHAPES), help="comma-separated n x c x oc")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per product and side (default 3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of both sides, one after the other, keeping each side's best per product: "
                             "on a shared or virtual machine one round's ratios can be off by 10%% or more")
    parser.add_argument("--paired", action="store_true",
                        help="both sides in one Java process, in alternating windows (OpenBLAS through the FFM API)")
    parser.add_argument("--windows", type=int, default=10,
                        help="with --paired: windows per product and side, alternating (default 10)")
    parser.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"),
                                                       "bin", "java"))
    args = parser.parse_args()
    core, config, lib, library = ensure_openblas(args.threads)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    detected = os.environ.get("ANVIL_OPENBLAS_DETECTED")
    print("OpenBLAS: %s; kernels %s%s; %s threads" % (config, core,
          " (it detected %s; OPENBLAS_CORETYPE=%s)" % (detected, os.environ["OPENBLAS_CORETYPE"]) if detected else "",
          os.environ["OPENBLAS_NUM_THREADS"]))
    blas, anvil = {}, {}
    for _ in range(max(1, args.rounds)):
        if args.paired:
            rates = paired_gflops(library, shapes, args.threads, args.java, args.seconds, args.windows)
        else:
            rates = ({s: openblas_gflops(lib, tuple(map(int, s.split("x"))), args.seconds) for s in shapes},
                     anvil_gflops(shapes, args.threads, args.java, args.seconds))
        keep_best(blas, rates[0])
        keep_best(anvil, rates[1])
    print("%-16s %-8s %21s %21s %15s" % ("", "", "fastest call", "median call", "ratio"))
    print("%-16s %-8s %10s %10s %10s %10s %7s %7s" % ("n x c x oc", "product", "OpenBLAS", "Anvil", "OpenBLAS", "Anvil",
                                                    "fastest", "median"))
    worst = [None, None]
    for s in shapes:
        for product in ("forward", "dinp", "dweight"):
            (bf, bm), (af, am) = blas[s][product], anvil[s][product]
            ratios = (af / bf, am / bm)
            worst = [r if w is None else min(w, r) for w, r in zip(worst, ratios)]
            print("%-16s %-8s %10.1f %10.1f %10.1f %10.1f %6.2fx %6.2fx" % (s, product, bf, af, bm, am, *ratios))
    print("GFLOP/s of single calls, each side's best over %d round(s)%s; lowest ratio %.2fx (fastest), %.2fx (median)"
          % (max(1, args.rounds), ", %d alternating windows a product in one process" % args.windows
             if args.paired else "", *worst))


if __name__ == "__main__":
    main()
