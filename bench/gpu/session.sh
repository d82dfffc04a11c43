#!/usr/bin/env bash
# bench/gpu/session.sh: the runbook of a GPU session, run on the GPU machine from the repository root
# with the distribution (./mvnw -Pdist package -DskipTests) in dist/anvil-*/. No JDK, Maven or
# network is needed there: only that distribution, bash, coreutils and awk, plus CUDA's driver and
# libraries; compute-sanitizer and python3 with PyTorch where present.
#
#   bash bench/gpu/session.sh call1      correctness, then Anvil's speed: probe, CUDA tests, tiny
#                                        CPU vs CUDA losses, gpt-1.3b bf16 bench-train  (~4 min)
#   bash bench/gpu/session.sh call2      baselines: PyTorch gpt-1.3b, gpt2-124m in Anvil and
#                                        PyTorch, then memcheck on 2 tiny steps if time remains (~4 min)
#   bash bench/gpu/session.sh call3      the speed issue's (13) figures, only after calls 1 and 2 and if
#                                        the window has 3 minutes left: attention TFLOPS (tensor cores,
#                                        FMA, PyTorch SDPA), the per-op profile of a gpt-1.3b step (~2.5 min)
#   bash bench/gpu/session.sh probe      the environment probe alone (15 s at most)
#   bash bench/gpu/session.sh selftest   both calls' plumbing on this machine's CPU (tiny model)
#
# A lent GPU has 15 minutes per issue, its start (1-2 min) included: the two calls and the start fit
# in 12. Each call keeps to SESSION_BUDGET seconds (default 240) and orders its steps by value, so
# what matters most comes back even if everything after it fails: every step is time-boxed with
# `timeout` (and skipped when too little time is left) and a failing step never stops the ones after
# it. Everything lands under $OUT, at most 8 files (the device tool's limit):
#   $OUT/summary.txt          one line per step (PASS/FAIL/SKIP/TIME, seconds, key figure or the
#                             first error), the environment header and the exact commands
#   $OUT/<call>-logs.tar.gz   every step's log, env.txt, test trace, metrics, sanitizer reports,
#                             JVM crash reports (hs_err), nvidia-smi samples; refreshed after each
#                             step, so a killed call still returns what it had
#   $OUT/anvil-*.json, torch-*.json   bench-train / bench_gpt.py results
# See bench/gpu/README.md for what each step proves and how to record results under bench/results/.
#
# Knobs (environment): SESSION_BUDGET (seconds for this call), PEAK (bench-train --peak-tflops;
# default from the GPU's name), BS_1P3B (gpt-1.3b batch, default 8), BS_124M (default 16), ANVIL_HEAP
# (the JVMs' heap, default 32g), ANVIL_COMMIT (default dist/anvil-*/COMMIT), ANVIL_CUDA_LIB_DIR
# (default: found by the probe), ANVIL_GPU_WORK (scratch folder, default /tmp/anvil-gpu).
set -u
set -o pipefail

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}
[ $# -eq 1 ] || usage
case "$1" in call1|call2|call3|probe|selftest) ;; *) usage ;; esac
what=$1

# test_report LOG: from anvil-test's --details=flat output, one line per required class (PASS, FAIL
# or SKIP with counts), the first failing test with its exception line, and every test that started
# but never finished (the JVM was killed, or a test hung).
test_report() {
  LC_ALL=C awk '
    function id_of(line) { i = index(line, "([engine:"); return i ? substr(line, i + 1, length(line) - i - 1) : "" }
    function leaf(id) { return id ~ /\[(method|test-template-invocation):/ }
    function cls(id,    c, n) {
      if (!match(id, /\[class:[^]]*\]/)) return ""
      c = substr(id, RSTART + 7, RLENGTH - 8); sub(/.*\./, "", c)
      if (match(id, /\[nested-class:[^]]*\]/)) c = c "$" substr(id, RSTART + 14, RLENGTH - 15)
      return c
    }
    function tname(id,    t) {
      t = "(class setup)"
      if (match(id, /\[(method|test-template):[^]]*\]/)) { t = substr(id, RSTART, RLENGTH); sub(/^\[[a-z-]+:/, "", t); sub(/\]$/, "", t) }
      if (match(id, /\[test-template-invocation:[^]]*\]/)) t = t " " substr(id, RSTART + 26, RLENGTH - 27)
      return t
    }
    /^Started: / { id = id_of($0); if (leaf(id)) { started[id] = 1; order[++n] = id } }
    /^Finished: / { last = id_of($0); done[last] = 1; outcome[last] = "PASS" }
    /^Skipped: / { id = id_of($0); done[id] = 1; outcome[id] = "SKIP"; if (leaf(id)) order[++n] = id }
    /^ +=> Exception: / {
      if (last == "") next
      outcome[last] = $0 ~ /TestAbortedException/ ? "SKIP" : "FAIL"
      msg = $0; sub(/^ +=> Exception: /, "", msg); exc[last] = substr(msg, 1, 240)
      # A class whose setup failed or skipped reports no tests: count the class itself.
      if (!leaf(last) && outcome[last] == "FAIL") { bad[cls(last)]++; if (firstfail == "") firstfail = last }
      if (!leaf(last) && outcome[last] == "SKIP") skip[cls(last)]++
    }
    END {
      for (k = 1; k <= n; k++) {
        id = order[k]; c = cls(id)
        if (!done[id]) { bad[c]++; hung = hung "  never finished: " c " > " tname(id) "\n"; continue }
        if (outcome[id] == "PASS") ok[c]++
        else if (outcome[id] == "SKIP") skip[c]++
        else { bad[c]++; if (firstfail == "") firstfail = id }
      }
      split("CudaBackendConformanceTest CudaBackendConformanceTest$Bf16 CudaBackendConformanceTest$Bf16FmaAttention CudaBackendTest TensorCoreAttentionTest CublasLtDescriptorTest FatbinTest", req, " ")
      for (r = 1; r in req; r++) {
        c = req[r]
        s = bad[c] ? "FAIL" : (ok[c] && !skip[c] ? "PASS" : "SKIP")
        printf "  %-36s %-4s %d passed, %d failed, %d skipped\n", c, s, ok[c], bad[c], skip[c]
      }
      if (firstfail != "") printf "  first failure: %s > %s\n    %s\n", cls(firstfail), tname(firstfail), exc[firstfail]
      printf "%s", hung
    }' "$1"
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo" || exit 1
OUT="${OUT:-$repo/out/gpu}"               # the device tool sets OUT; elsewhere results go to out/gpu
mkdir -p "$OUT"
scratch="${ANVIL_GPU_WORK:-/tmp/anvil-gpu}"   # data, checkpoints, the probe's findings: never packed
mkdir -p "$scratch"

if [ "$what" = selftest ]; then
  # Both calls as on the GPU machine, each with its own OUT, on the CPU with the tiny model: every
  # step's plumbing runs (the CUDA steps fail or skip, saying why); then each call's files are checked.
  rm -rf "$OUT/call1" "$OUT/call2" "$OUT/call3"
  status=0
  for call in call1 call2 call3; do
    OUT="$OUT/$call" ANVIL_GPU_WORK="$scratch/selftest" SESSION_BUDGET="${SESSION_BUDGET:-400}" DRY=1 \
      bash "$0" "$call" > "$scratch/selftest-$call.out" 2>&1
    n=$(find "$OUT/$call" -type f | wc -l)
    echo "---- $call: $n files in $OUT/$call (the device tool returns at most 8)"
    cat "$OUT/$call/summary.txt"
    [ "$n" -le 8 ] || { echo "selftest: $call left $n files, more than the 8 that come back"; status=1; }
  done
  # The test report of a run with a failure and a test that never finished (a GPU's, in miniature).
  cls='[engine:junit-jupiter]/[class:dev.anvil.kernels.cuda.CudaBackendTest]'
  report=$(printf '%s\n' "Started:     CudaBackendTest ($cls)" \
    "Started:     encoder() ($cls/[method:encoder()])" "Finished:    encoder() ($cls/[method:encoder()])" \
    "             => Exception: org.opentest4j.AssertionFailedError: dwte[3]: cpu 1.5, cuda 1.25" \
    "Started:     matmul() ($cls/[method:matmul()])" | test_report /dev/stdin)
  echo "---- the test report of a failing run:"
  echo "$report"
  for want in "CudaBackendTest .* FAIL 0 passed, 2 failed" "first failure: CudaBackendTest > encoder()" \
              "AssertionFailedError: dwte\[3\]" "never finished: CudaBackendTest > matmul()"; do
    echo "$report" | grep -q -e "$want" || { echo "selftest: the test report lacks '$want'"; status=1; }
  done
  # The steps whose plumbing must work without a GPU.
  for want in "call1 b-tiny-cpu PASS" "call1 b-tiny-candidate PASS" "call1 b-tiny-compare PASS" \
              "call1 d-anvil-tiny PASS" "call2 d-anvil-tiny PASS" "call1 a-cuda-tests SKIP" "call1 z-heap FAIL" \
              "call3 g-attention-tc PASS" "call3 g-attention-fma PASS" "call3 h-profile PASS"; do
    set -- $want
    grep -q "^$2 .* $3 " "$OUT/$1/summary.txt" || { echo "selftest: $1 has no '$2 ... $3' line"; status=1; }
  done
  grep -q '^z-heap .*Java heap exhausted' "$OUT/call1/summary.txt" || { echo "selftest: a Java heap too small was not named"; status=1; }
  if "${PYTHON:-python3}" -c 'import torch' 2>/dev/null; then
    grep -q '^e-torch-tiny .* PASS ' "$OUT/call2/summary.txt" || { echo "selftest: call2's PyTorch step did not pass"; status=1; }
    grep -q '^g-attention-torch .* PASS ' "$OUT/call3/summary.txt" || { echo "selftest: call3's PyTorch step did not pass"; status=1; }
  fi
  echo "selftest: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
  exit $status
fi

# The device call is given 300 s (call3: 200 s): the rest is packing margin.
budget="${SESSION_BUDGET:-$([ "$what" = call3 ] && echo 150 || echo 240)}"
t_start=$(date +%s)
deadline=$((t_start + budget))
summary="$OUT/summary.txt"
work="$scratch/$what"                     # this call's logs, packed into $OUT/<call>-logs.tar.gz
rm -rf "$work"
mkdir -p "$work"
dist="$(ls -d "$repo"/dist/anvil-*/ 2>/dev/null | head -n 1)"
dist="${dist%/}"
anvil="$dist/bin/anvil"
bar=55000                                 # the speed issue's tokens/s bar for gpt-1.3b bf16

# The models and backends of the calls; DRY=1 (the selftest) runs the same steps on the CPU, tiny.
if [ -n "${DRY:-}" ]; then
  big=tiny big_b=8 big_t=64 mid=tiny mid_b=8 mid_t=64 speed_backend=cpu tiny_candidate=cpu torch_device=cpu
  attention_shape=(--batch-size 1 --seq-len 64 --heads 2 --head-size 64) attention_dtype=fp32
else
  big=gpt-1.3b big_b=${BS_1P3B:-8} big_t=2048 mid=gpt2-124m mid_b=${BS_124M:-16} mid_t=1024
  speed_backend=cuda tiny_candidate=cuda torch_device=cuda
  # gpt-1.3b's attention: B=8, T=2048, 16 heads of 128
  attention_shape=(--batch-size 8 --seq-len 2048 --heads 16 --head-size 128) attention_dtype=bf16
fi

# Every JVM: an explicit heap (bin/anvil reads ANVIL_HEAP), and a crash leaves its hs_err report with
# the logs instead of in the working directory, and no core dump (gigabytes, and never packed).
export ANVIL_HEAP="${ANVIL_HEAP:-$([ -n "${DRY:-}" ] && echo 4g || echo 32g)}"
python=${PYTHON:-python3}                 # the Python that holds PyTorch
export JDK_JAVA_OPTIONS="-XX:ErrorFile=$work/hs_err_pid%p.log -XX:-CreateCoredumpOnCrash"
ulimit -c 0

now() { date +%s; }
left() { echo $((deadline - $(now))); }

# One line of the summary: STEP STATUS SECONDS DETAIL.
record() {
  printf '%-30s %-4s %4ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary"
}
note() {
  printf '%s\n' "$*" | tee -a "$summary"
}

# Packs this call's folder into $OUT; runs after every step, so a call killed at its limit still
# brings back the logs so far. tar to a temporary name first: a killed tar leaves no torn archive.
pack() {
  tar -czf "$scratch/.pack.tgz" -C "$scratch" "$what" 2>/dev/null &&
    mv -f "$scratch/.pack.tgz" "$OUT/$what-logs.tar.gz"
}

# run_step NAME LIMIT CMD...: runs CMD under `timeout`, its output in $work/NAME.log; sets $rc and
# $secs. The limit shrinks to what the budget has left; under 20 s the step is skipped (rc=-1).
run_step() {
  local name=$1 limit=$2
  shift 2
  local room=$(($(left) - 10))
  [ "$limit" -gt "$room" ] && limit=$room
  secs=0
  if [ "$limit" -lt 20 ]; then
    echo "skipped: only $((room + 10)) s of the budget left" > "$work/$name.log"
    rc=-1
    return 0
  fi
  printf '$ %s\n' "$*" > "$work/$name.log"
  step_t0=$(now)
  # -k: a JVM that ignores SIGTERM (it finishes its step first) is killed 10 s later.
  timeout -k 10 "$limit" "$@" >> "$work/$name.log" 2>&1
  rc=$?
  secs=$(($(now) - step_t0))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "timed out after $limit s" >> "$work/$name.log"; fi
  return 0
}

# The status word for $rc: PASS, FAIL, TIME (timed out) or SKIP (no time left).
status_of() {
  case "$1" in
    0) echo PASS ;;
    -1) echo SKIP ;;
    124|137) echo TIME ;;
    *) echo FAIL ;;
  esac
}

# Why a step failed, in one line: a JVM crash report written during the step (signal and frame), the
# Java heap running out, or the first line of the log that names an error.
why() {
  local log=$1 crash f
  crash=$(for f in "$work"/hs_err_pid*.log; do
    [ -e "$f" ] && [ "$(stat -c %Y "$f")" -ge "${step_t0:-0}" ] && echo "$f"; done | head -n 1)
  if [ -n "$crash" ]; then
    echo "JVM crashed ($(basename "$crash")): $(grep -m1 -E '^# +(SIG[A-Z]+|Internal Error|Out of Memory)' "$crash" | sed 's/^# *//' | cut -c1-80); frame: $(grep -A1 -m1 'Problematic frame' "$crash" | tail -n 1 | sed 's/^# *//' | cut -c1-80)"
  elif grep -q 'OutOfMemoryError' "$log" 2>/dev/null; then
    echo "Java heap exhausted (raise ANVIL_HEAP): $(grep -m1 'OutOfMemoryError' "$log" | cut -c1-100)"
  else
    grep -m1 -E 'error:|Error|Exception|FAILED|not found|no CUDA|out of memory|OUT_OF_MEMORY|skipped:|timed out' "$log" 2>/dev/null |
      cut -c1-200
  fi
}

# Median, min and max of the numbers on stdin, "median min max".
median_min_max() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "0 0 0"; exit }
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}

# The number after "key": in a JSON file (the first one), or after "obj": { ... "key": for a nested key.
json_num() {
  local file=$1 key=$2 obj=${3:-}
  LC_ALL=C awk -v key="$key" -v obj="$obj" '
    obj != "" && !inobj { if (index($0, "\"" obj "\"")) inobj = 1; else next }
    { i = index($0, "\"" key "\"")
      if (i) { s = substr($0, i + length(key) + 2); sub(/^[ ]*:[ ]*/, "", s); sub(/[,}].*$/, "", s); print s; exit } }' "$file"
}

# Samples the GPU (memory, utilisation, clocks, power) once a second into FILE; stop_smi ends it.
start_smi() {
  smi_pid=
  command -v nvidia-smi > /dev/null || return 0
  nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu,clocks.sm,power.draw,temperature.gpu \
    --format=csv,noheader,nounits -l 1 > "$1" 2>/dev/null &
  smi_pid=$!
}
stop_smi() {
  [ -n "${smi_pid:-}" ] && kill "$smi_pid" 2>/dev/null && wait "$smi_pid" 2>/dev/null
  smi_pid=
  return 0
}
# "GPU peak N MiB used, mean util U%" of a sample file.
smi_digest() {
  [ -s "$1" ] || { echo "no nvidia-smi samples"; return; }
  awk -F', *' '{ if ($2 > m) m = $2; u += $3; n++ } END { printf "GPU peak %d MiB used, mean util %.0f%%", m, n ? u / n : 0 }' "$1"
}

# ---------------------------------------------------------------------------------------------
# Probe: what the machine is and where CUDA's libraries are, in 15 s at most: the loader's cache,
# fixed folders and the folders of the Python that holds PyTorch (one `import torch`), never a
# search of the whole disk. Anvil loads libcuda.so.1 through the system loader itself; the folders
# found for cuBLASLt go into ANVIL_CUDA_LIB_DIR, all of them, since Anvil tries each in turn.

# Whether FILE is a 64-bit ELF file (32-bit copies and linker scripts are not).
elf64() {
  [ "$(head -c 5 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c4602 ]
}

# Every folder holding library NAME, one a line, best first: the loader's cache (x86-64 entries),
# then FOLDERS; never a stubs/ or compat/ folder, nor a file that is not a 64-bit ELF.
lib_dirs() {
  local name=$1 d f
  shift
  {
    ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n && /x86-64/ { print $NF }' | while read -r f; do dirname "$f"; done
    for d in "$@"; do echo "$d"; done
  } | awk 'NF && !seen[$0]++' | while read -r d; do
    case "/$d/" in */stubs/*|*/compat/*) continue ;; esac
    f="$d/$name"
    [ -e "$f" ] && elf64 "$f" && echo "$d"
  done
}

probe() {
  local f=$work/env.txt torch_out=$work/torch-probe.txt
  # The one Python start, in the background while the rest runs: torch's version and device, and
  # the folders of its CUDA wheels (nvidia/*/lib), where cuBLASLt lives when no toolkit is installed.
  timeout 12 "$python" - > "$torch_out" 2>&1 <<'PY' &
import glob, os, sys
print("python", sys.executable, sys.version.split()[0])
try:
    import torch
    ok = torch.cuda.is_available()
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", ok,
          "device", torch.cuda.get_device_name(0) if ok else "none")
    site = os.path.dirname(os.path.dirname(torch.__file__))
    for d in sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib"))) + [os.path.join(os.path.dirname(torch.__file__), "lib")]:
        print("libdir", d)
except Exception as e:
    print("torch unavailable:", type(e).__name__, e)
PY
  local py=$!
  {
    echo "== date (UTC)"; date -u +%Y-%m-%dT%H:%M:%SZ
    echo "== host"; uname -a; nproc; free -g 2>/dev/null; df -h /tmp 2>/dev/null | tail -n 1
    echo "== nvidia-smi"; timeout 5 nvidia-smi 2>&1
    echo "== nvidia-smi query"
    timeout 5 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm,clocks.max.mem,power.limit,pci.bus_id \
      --format=csv 2>&1 | tee "$work/smi-query.csv"
    echo "== CUDA libraries known to the loader"
    ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas' || echo none
    echo "== nvcc"; (command -v nvcc && timeout 5 nvcc --version) 2>&1 | tail -n 3
    echo "== compute-sanitizer"; (command -v compute-sanitizer && timeout 5 compute-sanitizer --version) 2>&1 | head -n 3
    echo "== distribution"; echo "$dist"; ls "$dist" "$dist/lib" "$dist/tests" 2>&1
    echo "== sha256 of Anvil's jars"; sha256sum "$dist"/lib/anvil-*.jar 2>&1
    echo "== java"; "$dist/runtime/bin/java" -version 2>&1
  } > "$f" 2>&1
  wait "$py"
  { echo "== python / torch (one import, 12 s at most)"; cat "$torch_out"; } >> "$f"

  local torch_dirs driver_dirs cublas_dirs
  torch_dirs=$(awk '$1 == "libdir" { print $2 }' "$torch_out")
  driver_dirs=$(lib_dirs libcuda.so.1 /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64)
  cublas_dirs=$( (lib_dirs libcublasLt.so.13 /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
                    /usr/local/cuda-13*/lib64 $torch_dirs; lib_dirs libcublasLt.so.12 /usr/local/cuda/lib64 \
                    /usr/local/cuda-12*/lib64 $torch_dirs) | awk '!seen[$0]++')
  {
    echo "== folders found (64-bit, no stubs/ or compat/)"
    echo "libcuda.so.1: $(echo $driver_dirs)"
    echo "libcublasLt.so.13/.12: $(echo $cublas_dirs)"
  } >> "$f"
  if [ -z "${ANVIL_CUDA_LIB_DIR:-}" ]; then
    ANVIL_CUDA_LIB_DIR=$(printf '%s\n' $cublas_dirs | paste -sd: -)
  fi
  export ANVIL_CUDA_LIB_DIR
  local row
  row=$(sed -n 2p "$work/smi-query.csv" 2>/dev/null | grep -v -i -E 'failed|not found|error')
  gpu_name=$(echo "$row" | awk -F', ' '{ print $1 }')
  driver=$(echo "$row" | awk -F', ' '{ print $2 }')
  gpu_mem=$(echo "$row" | awk -F', ' '{ print $3 }')
  torch_line=$(grep -m1 -E '^torch' "$torch_out" || echo "torch: no answer in 12 s")
  # bench-train's --peak-tflops: a known GPU's dense peak for the dtype (no CPU calibration on a GPU).
  if [ -z "${PEAK:-}" ]; then
    case "$gpu_name" in
      *H200*) PEAK=h200 ;;
      *H100*PCIe*) PEAK=h100-pcie ;;
      *H100*) PEAK=h100-sxm ;;
      *A100*) PEAK=a100 ;;
      *L4*) PEAK=l4 ;;
      *A10G*) PEAK=a10g ;;
      *) PEAK=h100-sxm ;;
    esac
  fi
  commit=${ANVIL_COMMIT:-$(cat "$dist/COMMIT" 2>/dev/null || git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)}
  sanitizer=$(command -v compute-sanitizer || { [ -x /usr/local/cuda/bin/compute-sanitizer ] && echo /usr/local/cuda/bin/compute-sanitizer; })
  {
    echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "gpu         ${gpu_name:-none} (${gpu_mem:-?}), driver ${driver:-none}; peak for MFU: $PEAK"
    echo "host        $(uname -r), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); JVM heap $ANVIL_HEAP"
    echo "dist        ${dist:-MISSING: build it with ./mvnw -Pdist package -DskipTests}; commit $commit"
    echo "fatbin      $(grep -c anvil_kernels.fatbin "$dist"/lib/anvil-kernels-*.jar 2>/dev/null | grep -q '^[1-9]' && echo 'in the kernels jar' || echo 'MISSING: the dist was built without nvcc')"
    echo "libcuda     ${driver_dirs:-not in the loader cache nor in /usr/local/nvidia/lib64}" | paste -sd' ' -
    echo "cuda libs   ANVIL_CUDA_LIB_DIR=${ANVIL_CUDA_LIB_DIR:-(none found)}"
    echo "sanitizer   ${sanitizer:-none}"
    echo "torch       $torch_line"
  } | tee -a "$summary"
}

# A deterministic text file for `train --data`: 12-word lines from a small word list, picked by a
# Park-Miller generator (exact in awk's doubles, so every awk writes the same bytes).
make_text() {
  local file=$1 bytes=$2
  [ -s "$file" ] && return 0
  LC_ALL=C awk -v bytes="$bytes" 'BEGIN {
    n = split("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their been has more its would will who can when so no other into them than only some time could these two may first then do any like my now over such our man me even most made after also did many before must through years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three", w, " ")
    x = 1337; out = 0
    while (out < bytes) {
      line = ""
      for (i = 0; i < 12; i++) { x = (x * 16807) % 2147483647; line = line (i ? " " : "") w[1 + int(x / 2147483647 * n)] }
      print line "."; out += length(line) + 2
    }
  }' > "$file.tmp" && mv "$file.tmp" "$file"
}

no_dist() {
  if [ -z "$dist" ] || [ ! -x "$anvil" ]; then
    record "$1" FAIL 0 "no distribution in dist/anvil-*/ (build it: ./mvnw -Pdist package -DskipTests, carry dist)"
    return 0
  fi
  return 1
}

# ---------------------------------------------------------------------------------------------

# call1 (a): the CUDA test classes from the distribution's test jar, with CUDA_LAUNCH_BLOCKING=1 (a
# kernel's error surfaces at its own launch) and anvil.requireCuda (a skip fails: bin/anvil-test sets
# it where it sees a GPU). Each test has 30 s, in a thread of its own, so a hung one fails and the
# rest still run; the whole suite has 120 s. --details=flat prints "Started:"/"Finished:" lines and
# each failure's exception, from which the summary gets the first failing test with its exception
# line, the per-class counts and any test that started but never finished.
tests_step() {
  no_dist "a-cuda-tests" && return
  local log=$work/a-cuda-tests.log
  CUDA_LAUNCH_BLOCKING=1 JDK_JAVA_OPTIONS="$JDK_JAVA_OPTIONS -Danvil.cuda.kernels.built=true" \
    run_step a-cuda-tests 120 "$dist/bin/anvil-test" --select-package dev.anvil.kernels.cuda \
      --config junit.jupiter.execution.timeout.default=30s \
      --config junit.jupiter.execution.timeout.thread.mode.default=SEPARATE_THREAD \
      --details=flat --disable-ansi-colors  # --config after --details=flat makes JUnit 1.13 find no tests
  local st
  st=$(status_of $rc)
  test_report "$log" > "$work/a-classes.txt"
  # The step passes only if JUnit did and every required class passed; a skip anywhere is SKIP.
  if [ "$st" = PASS ]; then
    grep -q ' FAIL ' "$work/a-classes.txt" && st=FAIL
    [ "$st" = PASS ] && grep -q ' SKIP ' "$work/a-classes.txt" && st=SKIP
  fi
  record "a-cuda-tests" "$st" "$secs" "junit: $(grep -E 'tests (successful|failed|aborted)' "$log" | tr -s ' []' ' ' | sed 's/^ //; s/ $//' | paste -sd, - | sed 's/,/, /g')"
  tee -a "$summary" < "$work/a-classes.txt"
  pack
}

# call1 (b): tiny, 20 steps, fp32, same seed and data, on the CPU backend and on CUDA; every step's
# loss within 1e-4 relative (the CUDA backend runs full fp32 cuBLASLt, no TF32).
tiny_args=(--preset tiny --steps 20 --batch-size 8 --seq-len 64 --seed 1337 --eval-every 0 --save-every 0)
tiny_step() {
  no_dist "b-tiny" && return
  local data=$scratch/tiny.txt st
  make_text "$data" 1000000
  rm -rf "$scratch/ckpt-tiny-cpu" "$scratch/ckpt-tiny-cand" "$work"/b-tiny-*.jsonl
  run_step b-tiny-cpu 60 "$anvil" train "${tiny_args[@]}" --data "$data" --backend cpu \
    --save-dir "$scratch/ckpt-tiny-cpu" --metrics-out "$work/b-tiny-cpu.jsonl"
  st=$(status_of $rc)
  record "b-tiny-cpu" "$st" "$secs" "$([ "$st" = PASS ] && tail -n 1 "$work/b-tiny-cpu.log" | cut -c1-120 || why "$work/b-tiny-cpu.log")"
  run_step b-tiny-candidate 90 "$anvil" train "${tiny_args[@]}" --data "$data" --backend "$tiny_candidate" \
    --save-dir "$scratch/ckpt-tiny-cand" --metrics-out "$work/b-tiny-candidate.jsonl"
  st=$(status_of $rc)
  record "b-tiny-candidate" "$st" "$secs" "--backend $tiny_candidate: $([ "$st" = PASS ] && tail -n 1 "$work/b-tiny-candidate.log" | cut -c1-110 || why "$work/b-tiny-candidate.log")"
  bash "$repo/bench/gpu/compare_losses.sh" "$work/b-tiny-cpu.jsonl" "$work/b-tiny-candidate.jsonl" 1e-4 20 \
    > "$work/b-tiny-compare.log" 2>&1
  rc=$?
  record "b-tiny-compare" "$(status_of $rc)" 0 "fp32 $tiny_candidate vs cpu: $(tail -n 1 "$work/b-tiny-compare.log" | cut -c1-150)"
  note "  command: bin/anvil train ${tiny_args[*]} --data tiny.txt --backend cpu|cuda --metrics-out F.jsonl"
  pack
}

# A one-line digest of a bench-train-style JSON: tokens/s, MFU, the bar for gpt-1.3b.
digest() {
  local f=$1 tps mfu
  tps=$(json_num "$f" median tokens_per_s)
  mfu=$(json_num "$f" mfu)
  LC_ALL=C awk -v tps="$tps" -v mfu="$mfu" -v bar="$bar" -v big="$2" 'BEGIN {
    printf "%.0f tokens/s, MFU %s", tps, (mfu == "" || mfu == "null") ? "n/a" : sprintf("%.2f%%", 100 * mfu)
    if (big) printf ", %.0f%% of the %d tokens/s bar (%s)", 100 * tps / bar, bar, (tps >= bar ? "MET" : "not met") }'
}

# (d) anvil_speed PRESET B T WARMUP STEPS LIMIT: one bench-train in bf16, and nothing else: no
# retry at a smaller batch, no fallback to `train` (each would start another JVM and double the
# time of a failure). On a timeout the summary shows the last lines bench-train printed (one per step).
anvil_speed() {
  local preset=$1 b=$2 t=$3 warm=$4 steps=$5 limit=$6 name=anvil-$1 st detail big=0
  [ "$preset" = gpt-1.3b ] && big=1
  no_dist "d-$name" && return
  local bt=(bench-train --preset "$preset" --backend "$speed_backend" --dtype bf16 --batch-size "$b" --seq-len "$t"
            --steps "$steps" --warmup "$warm" --peak-tflops "$PEAK" --csv "$work/bench-train.csv" --json "$OUT/$name.json")
  rm -f "$OUT/$name.json"
  start_smi "$work/d-$name.smi.csv"
  run_step "d-$name" "$limit" "$anvil" "${bt[@]}"
  stop_smi
  st=$(status_of $rc)
  local log=$work/d-$name.log
  if [ "$st" = PASS ]; then
    detail="B=$b T=$t: $(digest "$OUT/$name.json" $big); $(smi_digest "$work/d-$name.smi.csv"); $(grep -m1 'weights initialised' "$log")"
    cp "$OUT/$name.json" "$scratch/$name.json"   # for call2's comparison, if the machine stays warm
  elif [ "$st" = TIME ]; then
    detail="timed out; last lines: $(grep -v -E '^\$ |^NOTE: Picked up|^timed out' "$log" | tail -n 3 | cut -c1-90 | paste -sd'|' -)"
  else
    detail=$(why "$log")
  fi
  record "d-$name" "$st" "$secs" "$detail"
  note "  command: bin/anvil ${bt[*]}"
  pack
}

# (e) torch_speed PRESET B T WARMUP STEPS LIMIT: bench/pytorch/bench_gpt.py, torch.compile per block,
# then bench-compare against Anvil's result of the same preset when one is at hand.
torch_speed() {
  local preset=$1 b=$2 t=$3 warm=$4 steps=$5 limit=$6 name=torch-$1
  if ! "$python" -c 'import torch' > /dev/null 2>&1; then
    record "e-$name" SKIP 0 "$python cannot import torch"
    return
  fi
  rm -f "$OUT/$name.json"
  start_smi "$work/e-$name.smi.csv"
  PYTHONUNBUFFERED=1 run_step "e-$name" "$limit" "$python" "$repo/bench/pytorch/bench_gpt.py" --preset "$preset" \
    --batch-size "$b" --seq-len "$t" --warmup "$warm" --steps "$steps" --peak-tflops "$PEAK" --auto-accum \
    --compile-scope block --device "$torch_device" --json "$OUT/$name.json"
  stop_smi
  if [ $rc -ne 0 ]; then
    record "e-$name" "$(status_of $rc)" "$secs" "$(why "$work/e-$name.log")"
    pack
    return
  fi
  record "e-$name" PASS "$secs" "B=$b T=$t: $(digest "$OUT/$name.json" 0); $(smi_digest "$work/e-$name.smi.csv"); $(grep -o '"compile_scope": [a-z"]*' "$OUT/$name.json")"
  note "  command: python3 bench/pytorch/bench_gpt.py --preset $preset --batch-size $b --seq-len $t --warmup $warm --steps $steps --peak-tflops $PEAK --auto-accum --compile-scope block --json $name.json"
  local other=$OUT/anvil-$preset.json
  [ -s "$other" ] || other=$scratch/anvil-$preset.json
  if [ -n "$dist" ] && [ -x "$anvil" ] && [ -s "$other" ]; then
    "$anvil" bench-compare "$other" "$OUT/$name.json" > "$work/e-compare-$preset.log" 2>&1
    note "  bench-compare anvil-$preset.json $name.json:"
    grep -v -E 'WARNING|^NOTE: Picked up' "$work/e-compare-$preset.log" | grep -E '^ |tokens/s median|MFU|step ms median|backend|B x T' |
      sed 's/^/    /' | tee -a "$summary"
  else
    note "  no anvil-$preset.json at hand: compare back home (bench/gpu/record.sh)"
  fi
  pack
}

# call2 (f): compute-sanitizer memcheck on 2 tiny training steps (with leak check). The JVM is a
# bash script that execs java: --target-processes all follows it; --launch-timeout gives the JVM time
# to start; --error-exitcode 86 separates "the sanitizer found errors" from the program's own failure.
# The last line of each report, "========= ERROR SUMMARY: N errors", decides PASS (0 in every process).
memcheck_step() {
  no_dist "f-memcheck" && return
  if [ -z "$sanitizer" ]; then
    record "f-memcheck" SKIP 0 "compute-sanitizer not found (PATH, /usr/local/cuda/bin)"
    return
  fi
  local data=$scratch/tiny.txt summaries errors kinds st
  make_text "$data" 1000000
  rm -rf "$scratch/ckpt-san" "$work"/f-memcheck.*.txt
  run_step f-memcheck 150 "$sanitizer" --tool memcheck --leak-check full --target-processes all \
    --launch-timeout 120 --require-cuda-init no --error-exitcode 86 --print-limit 100 \
    --log-file "$work/f-memcheck.%p.txt" "$anvil" train --preset tiny --batch-size 4 --seq-len 64 --seed 1337 \
    --eval-every 0 --save-every 0 --data "$data" --backend cuda --steps 2 --save-dir "$scratch/ckpt-san"
  st=$(status_of $rc)
  summaries=$(cat "$work"/f-memcheck.*.txt 2>/dev/null | grep -h 'ERROR SUMMARY' || true)
  errors=$(printf '%s\n' "$summaries" | awk '{ for (i = 1; i <= NF; i++) if ($i == "SUMMARY:") n += $(i + 1) } END { print n + 0 }')
  kinds=$(cat "$work"/f-memcheck.*.txt 2>/dev/null | grep -h '^=========' |
    grep -o -E '(Invalid [^ ]+ [a-z]+|Program hit [A-Z_]+|Leaked [0-9]+ bytes)' |
    sort | uniq -c | sort -rn | head -n 4 | awk '{ $1 = $1 "x"; print }' | paste -sd';' -)
  if [ "$st" = PASS ] && [ -z "$summaries" ]; then st=FAIL; kinds="no ERROR SUMMARY line: did the sanitizer attach?"; fi
  [ $rc -eq 86 ] && st=FAIL
  record "f-memcheck" "$st" "$secs" "${errors} errors${kinds:+: $kinds}$([ $rc -ne 0 ] && [ $rc -ne 86 ] && echo "; $(why "$work/f-memcheck.log")")"
  note "  command: compute-sanitizer --tool memcheck --leak-check full --target-processes all --launch-timeout 120 --require-cuda-init no --error-exitcode 86 bin/anvil train --preset tiny --steps 2 --backend cuda ..."
  pack
}

# call3 (g): causal attention alone at gpt-1.3b's shape, forward and forward+backward TFLOPS, on the
# tensor cores, on the FMA kernels, and in PyTorch (SDPA); the bar is 150 TFLOPS forward+backward.
attention_step() {
  no_dist "g-attention" && return
  local kernels st
  for kernels in tc fma; do
    run_step "g-attention-$kernels" 45 "$anvil" bench-attention --backend "$speed_backend" --dtype "$attention_dtype" \
      --attention "$kernels" "${attention_shape[@]}" --repeats 5
    st=$(status_of $rc)
    record "g-attention-$kernels" "$st" "$secs" "$([ "$st" = PASS ] && grep -E '^forward' "$work/g-attention-$kernels.log" |
      awk '{ printf "%s%s %s TFLOPS", (NR > 1 ? "; " : ""), $1, $4 }' || why "$work/g-attention-$kernels.log")"
    note "  command: bin/anvil bench-attention --backend $speed_backend --dtype $attention_dtype --attention $kernels ${attention_shape[*]} --repeats 5"
  done
  if ! "$python" -c 'import torch' > /dev/null 2>&1; then
    record "g-attention-torch" SKIP 0 "$python cannot import torch"
  else
    PYTHONUNBUFFERED=1 run_step g-attention-torch 40 "$python" "$repo/bench/pytorch/bench_attention.py" \
      "${attention_shape[@]}" --repeats 5 --device "$torch_device" --dtype "$attention_dtype" --json "$work/g-attention-torch.json"
    st=$(status_of $rc)
    record "g-attention-torch" "$st" "$secs" "$([ "$st" = PASS ] && grep -E '^forward' "$work/g-attention-torch.log" |
      awk '{ printf "%s%s %s TFLOPS", (NR > 1 ? "; " : ""), $1, $4 }' || why "$work/g-attention-torch.log")"
    note "  command: python3 bench/pytorch/bench_attention.py ${attention_shape[*]} --repeats 5 --dtype $attention_dtype"
  fi
  pack
}

# call3 (h): where one gpt-1.3b bf16 step's time goes, by op class, against each class's roofline
# (CUDA events around every op); the table is in h-profile.log and the summary.
profile_step() {
  no_dist "h-profile" && return
  local args=(bench-profile --preset "$big" --backend "$speed_backend" --dtype "$([ -n "${DRY:-}" ] && echo fp32 || echo bf16)"
              --batch-size "$big_b" --seq-len "$big_t" --warmup 1)
  [ -n "${DRY:-}" ] && args+=(--peak-tflops 1)
  run_step h-profile 100 "$anvil" "${args[@]}"
  local st
  st=$(status_of $rc)
  record "h-profile" "$st" "$secs" "$([ "$st" = PASS ] && grep -E '^tokens/s from this step' "$work/h-profile.log" || why "$work/h-profile.log")"
  [ "$st" = PASS ] && sed -n '/^op /,/^step /p' "$work/h-profile.log" | sed 's/^/    /' | tee -a "$summary" > /dev/null
  note "  command: bin/anvil ${args[*]}"
  pack
}

# ---------------------------------------------------------------------------------------------
: > "$summary"
note "Anvil GPU session: bench/gpu/session.sh $what${DRY:+ (selftest: CPU, tiny)}"
note "=== $what ($(date -u +%H:%M:%SZ), budget $budget s)"
probe
pack
case "$what" in
  call1)
    tests_step
    tiny_step
    anvil_speed "$big" "$big_b" "$big_t" 2 5 600     # whatever the budget has left
    if [ -n "${DRY:-}" ]; then
      # The selftest only: a heap too small for gpt2-124m must be named as such in the summary.
      ANVIL_HEAP=64m run_step z-heap 60 "$anvil" bench-train --preset gpt2-124m --backend cpu --steps 1 --warmup 0 \
        --csv "$work/z-heap.csv" --json "$work/z-heap.json"
      record "z-heap" "$(status_of $rc)" "$secs" "ANVIL_HEAP=64m: $(why "$work/z-heap.log")"
    fi ;;
  call2)
    torch_speed "$big" "$big_b" "$big_t" 2 5 120
    anvil_speed "$mid" "$mid_b" "$mid_t" 2 10 60
    torch_speed "$mid" "$mid_b" "$mid_t" 2 10 70
    if [ "$(left)" -ge 60 ]; then
      memcheck_step
    else
      record "f-memcheck" SKIP 0 "only $(left) s left"
    fi ;;
  call3)
    attention_step
    profile_step ;;
esac
pack
note ""
note "done in $(($(now) - t_start)) s; files in $OUT: $(ls "$OUT" | paste -sd' ' -)"
