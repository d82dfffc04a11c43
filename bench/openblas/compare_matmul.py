#!/usr/bin/python3
"""Anvil's CPU matmul against OpenBLAS's sgemm, side by side in one run, shape by shape.

For each shape n x c x oc of the model's linear layers it times the three products of a layer,
as numpy (OpenBLAS) and as JMH's MatmulBenchmark (Anvil), and prints GFLOP/s and the ratio:

    forward  out  = inp · weightᵀ     (n x c)  · (c x oc)
    dinp     dinp = dout · weight     (n x oc) · (oc x c)
    dweight  dw   = doutᵀ · inp       (oc x n) · (n x c)

OpenBLAS runs with as many threads as Anvil (2 by default) and, where the CPU has AVX-512 but
OpenBLAS does not recognise it (it falls back to SSE kernels on CPUs newer than itself), with
OPENBLAS_CORETYPE set to its AVX-512 kernels. Debian's numpy links the reference BLAS unless
OpenBLAS is installed; the script finds libopenblas (Debian's openblas-pthread directory, or
OPENBLAS_DIR) and re-runs itself on it, and refuses to compare against anything else.

Usage (build first: ./mvnw -q package -DskipTests; run alone on the machine: cpu-exclusive):
    cpu-exclusive /usr/bin/python3 bench/openblas/compare_matmul.py [--threads 2] [--rounds 3] [--shapes 1024x384x1152,...]
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
    """OpenBLAS's chosen kernels and its configuration string, or None if no OpenBLAS is loaded."""
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode(), lib.openblas_get_config().decode()
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


def best_seconds(f, seconds):
    for _ in range(3):
        f()
    best, runs, end = float("inf"), 0, time.perf_counter() + seconds
    while time.perf_counter() < end or runs < 3:
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
        runs += 1
    return best


def openblas_gflops(shape, seconds):
    import numpy as np
    n, c, oc = shape
    rng = np.random.default_rng(1)
    x = rng.random((n, c), dtype=np.float32) * 2 - 1
    w = rng.random((oc, c), dtype=np.float32) * 2 - 1
    dy = rng.random((n, oc), dtype=np.float32) * 2 - 1
    out, dx, dw = np.empty((n, oc), np.float32), np.empty((n, c), np.float32), np.empty((oc, c), np.float32)
    flop = 2.0 * n * c * oc
    return {
        "forward": flop / best_seconds(lambda: np.matmul(x, w.T, out=out), seconds) / 1e9,
        "dinp": flop / best_seconds(lambda: np.matmul(dy, w, out=dx), seconds) / 1e9,
        "dweight": flop / best_seconds(lambda: np.matmul(dy.T, x, out=dw), seconds) / 1e9,
    }


def anvil_gflops(shapes, threads, java):
    """Runs JMH's MatmulBenchmark on every shape; returns {shape: {product: GFLOP/s}}."""
    if not os.path.exists(JAR):
        sys.exit("%s is missing: build first (./mvnw -q package -DskipTests)" % JAR)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = f.name
    cmd = [java, "-jar", JAR, "MatmulBenchmark", "-p", "shape=" + ",".join(shapes), "-f", "1", "-wi", "3", "-w", "1",
           "-i", "5", "-r", "1", "-p", "threads=%d" % threads, "-rf", "json", "-rff", result]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(result) as f:
        runs = json.load(f)
    os.unlink(result)
    # gflop is a counter of GFLOP done, per second; backward does dinp and dweight, backwardWeight dweight only.
    rate = {}
    for r in runs:
        name = r["benchmark"].rsplit(".", 1)[1]
        shape = r["params"]["shape"]
        rate.setdefault(shape, {})[name] = r["secondaryMetrics"]["gflop"]["score"]
    out = {}
    for shape, m in rate.items():
        n, c, oc = map(int, shape.split("x"))
        gflop = 2.0 * n * c * oc / 1e9
        dw_s = gflop / m["backwardWeight"]
        dinp_s = 2 * gflop / m["backward"] - dw_s
        out[shape] = {"forward": m["forward"], "dinp": gflop / dinp_s, "dweight": m["backwardWeight"]}
    return out


def keep_best(best, rates):
    """Raises best[shape][product] to rates[shape][product] wherever that is higher."""
    for shape, products in rates.items():
        for product, rate in products.items():
            best.setdefault(shape, {})[product] = max(best.get(shape, {}).get(product, 0.0), rate)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    parser.add_argument("--shapes", default=",".join(DEFAULT_SHAPES), help="comma-separated n x c x oc")
    parser.add_argument("--seconds", type=float, default=1.5, help="numpy timing per product (best of)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of both sides, one after the other, keeping each side's best per product: "
                             "on a shared or virtual machine one round's ratios can be off by 10%% or more")
    parser.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"),
                                                       "bin", "java"))
    args = parser.parse_args()
    core, config = ensure_openblas(args.threads)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    detected = os.environ.get("ANVIL_OPENBLAS_DETECTED")
    print("OpenBLAS: %s; kernels %s%s; %s threads" % (config, core,
          " (it detected %s; OPENBLAS_CORETYPE=%s)" % (detected, os.environ["OPENBLAS_CORETYPE"]) if detected else "",
          os.environ["OPENBLAS_NUM_THREADS"]))
    blas, anvil = {}, {}
    for _ in range(max(1, args.rounds)):
        keep_best(blas, {s: openblas_gflops(tuple(map(int, s.split("x"))), args.seconds) for s in shapes})
        keep_best(anvil, anvil_gflops(shapes, args.threads, args.java))
    print("%-16s %-8s %10s %10s %7s" % ("n x c x oc", "product", "OpenBLAS", "Anvil", "ratio"))
    worst = None
    for s in shapes:
        for product in ("forward", "dinp", "dweight"):
            ratio = anvil[s][product] / blas[s][product]
            worst = ratio if worst is None else min(worst, ratio)
            print("%-16s %-8s %10.1f %10.1f %6.2fx" % (s, product, blas[s][product], anvil[s][product], ratio))
    print("GFLOP/s, best of each side over %d round(s); lowest ratio %.2fx" % (max(1, args.rounds), worst))


if __name__ == "__main__":
    main()
