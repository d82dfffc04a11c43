#!/usr/bin/env bash
# bench/gpu/session.sh: the runbook of a GPU session, run on the GPU machine from the repository root
# with the distribution (./mvnw -Pdist package -DskipTests) in dist/anvil-*/. No JDK, Maven or
# network is needed there: only that distribution, bash, coreutils and awk, plus CUDA's driver and
# libraries; compute-sanitizer and python3 with PyTorch where present.
#
#   bash bench/gpu/session.sh part1            correctness: environment, CUDA test classes,
#                                              tiny fp32 GPU vs CPU losses, compute-sanitizer
#   bash bench/gpu/session.sh part2            Anvil's speed: bench-train gpt-1.3b and gpt2-124m, bf16
#   bash bench/gpu/session.sh part3            PyTorch baseline of the same runs, and bench-compare
#   bash bench/gpu/session.sh part2 part3      several parts in one call share one time budget
#   bash bench/gpu/session.sh env              the environment probe alone
#   bash bench/gpu/session.sh selftest         part2/part3 plumbing on the CPU (tiny), no GPU needed
#
# Each part fits one device call of 10 minutes: the parts together share SESSION_BUDGET seconds
# (default 540), every step is time-boxed with `timeout` (and skipped when too little time is left),
# a failing step never stops the ones after it. Everything lands under $OUT (the device tool sends
# back at most 8 files, so logs are packed):
#   $OUT/summary.txt               one line per step (PASS/FAIL/SKIP, seconds, key figure), the
#                                  environment header and the exact commands; also printed at the end
#   $OUT/<part>-logs.tar.gz        every step's log (<step>.log), env.txt, metrics, sanitizer reports,
#                                  nvidia-smi samples; refreshed after each step, so a killed call
#                                  still returns what it had
#   $OUT/anvil-*.json, torch-*.json  bench-train / bench_gpt.py results (part2, part3)
# See bench/gpu/README.md for what each step proves and how to record results under bench/results/.
#
# Knobs (environment): SESSION_BUDGET (seconds for this call), PEAK (bench-train --peak-tflops;
# default from the GPU's name), BS_1P3B (gpt-1.3b batch size, default 8), BS_124M (default 16),
# ANVIL_COMMIT (the commit the dist was built from; default dist/anvil-*/COMMIT), ANVIL_CUDA_LIB_DIR
# (default: found here), ANVIL_GPU_WORK (scratch folder, default /tmp/anvil-gpu).
# `session.sh selftest` runs part2's and part3's plumbing on the CPU (tiny model), for a dry run.
set -u
set -o pipefail

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}
[ $# -ge 1 ] || usage
for p in "$@"; do
  case "$p" in part1|part2|part3|env|selftest) ;; *) usage ;; esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo" || exit 1
OUT="${OUT:-$repo/out/gpu}"               # the device tool sets OUT; elsewhere results go to out/gpu
mkdir -p "$OUT"
scratch="${ANVIL_GPU_WORK:-/tmp/anvil-gpu}"   # data, checkpoints: never packed
mkdir -p "$scratch"
budget="${SESSION_BUDGET:-540}"           # the tool kills a command at 600 s; keep a margin for packing
t_start=$(date +%s)
deadline=$((t_start + budget))
summary="$OUT/summary.txt"
dist="$(ls -d "$repo"/dist/anvil-*/ 2>/dev/null | head -n 1)"
dist="${dist%/}"
anvil="$dist/bin/anvil"
bar=55000                                 # the speed issue's tokens/s bar for gpt-1.3b bf16

now() { date +%s; }
left() { echo $((deadline - $(now))); }

# One line of the summary: STEP STATUS SECONDS DETAIL.
record() {
  printf '%-38s %-4s %5ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary"
}
note() {
  printf '%s\n' "$*" | tee -a "$summary"
}

# Packs the current part's folder into $OUT; runs after every step, so a call killed at its limit
# still brings back the logs so far. tar to a temporary name first: a killed tar leaves no torn archive.
pack() {
  [ -n "${work:-}" ] && [ -d "$work" ] || return 0
  tar -czf "$scratch/.pack.tgz" -C "$(dirname "$work")" "$(basename "$work")" 2>/dev/null &&
    mv -f "$scratch/.pack.tgz" "$OUT/$(basename "$work")-logs.tar.gz"
}

# run_step NAME LIMIT CMD...: runs CMD under `timeout`, its output in $work/NAME.log; sets $rc and
# $secs. The limit shrinks to what the budget has left; under 20 s the step is skipped (rc=-1).
run_step() {
  local name=$1 limit=$2
  shift 2
  local room=$(($(left) - 15))
  [ "$limit" -gt "$room" ] && limit=$room
  secs=0
  if [ "$limit" -lt 20 ]; then
    echo "skipped: only $((room + 15)) s of the budget left" > "$work/$name.log"
    rc=-1
    return 0
  fi
  printf '$ %s\n' "$*" > "$work/$name.log"
  local t0
  t0=$(now)
  # -k: a JVM that ignores SIGTERM (it finishes its step first) is killed 15 s later.
  timeout -k 15 "$limit" "$@" >> "$work/$name.log" 2>&1
  rc=$?
  secs=$(($(now) - t0))
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && echo "timed out after $limit s" >> "$work/$name.log"
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

# The first line of a log that says what went wrong (an exception, "error:", a failed test), for the summary.
why() {
  grep -m1 -E 'error:|Error|Exception|FAILED|not found|no CUDA|out of memory|skipped:|timed out' "$1" 2>/dev/null |
    cut -c1-160
}

# Median, min and max of the numbers on stdin, "median min max".
median_min_max() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "0 0 0"; exit }
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}

# The number after "key": in a JSON file (the first one: top-level keys come before nested ones
# of the same name in the files read here), or after "obj": { ... "key": for a nested key.
json_num() {
  local file=$1 key=$2 obj=${3:-}
  LC_ALL=C awk -v key="$key" -v obj="$obj" '
    obj != "" && !inobj { if (index($0, "\"" obj "\"")) inobj = 1; else next }
    { i = index($0, "\"" key "\"")
      if (i) { s = substr($0, i + length(key) + 2); sub(/^[ ]*:[ ]*/, "", s); sub(/[,}].*$/, "", s); print s; exit } }' "$file"
}

# Starts sampling the GPU (memory, utilisation, clocks, power) once a second into FILE; stop_smi ends it.
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
# "peak MiB, mean util %" of a sample file.
smi_digest() {
  [ -s "$1" ] || { echo "no nvidia-smi samples"; return; }
  awk -F', *' '{ if ($2 > m) m = $2; u += $3; n++ } END { printf "GPU peak %d MiB used, mean util %.0f%%", m, n ? u / n : 0 }' "$1"
}

# ---------------------------------------------------------------------------------------------
# Environment: what the GPU machine is, and where CUDA's libraries are. Anvil loads libcuda.so.1
# and libcublasLt.so.13 itself (LibraryLocator); if they are somewhere it does not look (the
# driver's /usr/local/nvidia, a Python venv's nvidia/*/lib), ANVIL_CUDA_LIB_DIR points it there.

# The folder holding library $1: the dynamic loader's cache first, then the usual places, then a
# bounded search of the disk. Stubs (link-time only) and compat (forward-compatibility) copies of
# libcuda are skipped: loading either instead of the driver's own breaks or misreports the GPU.
find_lib() {
  local name=$1 p d
  p=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }')
  if [ -n "$p" ] && [ -e "$p" ]; then dirname "$p"; return; fi
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 \
           /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
           /usr/local/cuda-*/targets/x86_64-linux/lib /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib; do
    [ -e "$d/$name" ] && { echo "$d"; return; }
  done
  p=$(timeout 60 find / \( -path /proc -o -path /sys -o -path /dev -o -path "$repo" \) -prune -o \
        -name "$name" -print 2>/dev/null | grep -v -e /stubs/ -e /compat/ | head -n 1)
  [ -n "$p" ] && dirname "$p"
}

probe_env() {
  local f=$work/env.txt
  if [ -n "${probed:-}" ]; then
    # Later parts of the same call: the header again, not the slow disk search.
    cp "$probed" "$f"
    summary_header
    return
  fi
  probed=$f
  {
    echo "== date (UTC)"; date -u +%Y-%m-%dT%H:%M:%SZ
    echo "== host"; uname -a; nproc; free -g 2>/dev/null; df -h /tmp 2>/dev/null | tail -n 1
    echo "== nvidia-smi"; nvidia-smi 2>&1
    echo "== nvidia-smi query"
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm,clocks.max.mem,power.limit,pci.bus_id,persistence_mode \
      --format=csv 2>&1
    echo "== CUDA libraries known to the loader"; ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas' || echo none
    echo "== every libcuda.so.1 / libcublasLt.so.13 on the disk (part1 and env only: it can take a minute)"
    [ "$1" = part1 ] || [ "$1" = env ] && timeout 60 find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
      \( -name 'libcuda.so.1' -o -name 'libcublasLt.so.1[23]' \) -print 2>/dev/null
    echo "== nvcc"; (command -v nvcc && nvcc --version) 2>&1 | tail -n 3
    echo "== compute-sanitizer"; (command -v compute-sanitizer && compute-sanitizer --version) 2>&1 | head -n 3
    echo "== python / torch"
    python3 -c 'import sys, torch; print(sys.executable, sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -n 1
    echo "== distribution"; echo "$dist"; ls "$dist" "$dist/lib" "$dist/tests" 2>&1
    echo "== fatbin in the kernels jar (its name appears in the zip directory)"
    grep -c 'anvil_kernels.fatbin' "$dist"/lib/anvil-kernels-*.jar 2>&1
    echo "== sha256 of Anvil's jars"; sha256sum "$dist"/lib/anvil-*.jar 2>&1
    echo "== java"; "$dist/runtime/bin/java" -version 2>&1
    echo "== git"; git -C "$repo" rev-parse HEAD 2>&1 | head -n 1
  } > "$f" 2>&1

  # CUDA libraries for Anvil (kept when the caller set ANVIL_CUDA_LIB_DIR).
  if [ -z "${ANVIL_CUDA_LIB_DIR:-}" ]; then
    local a b
    a=$(find_lib libcuda.so.1)
    b=$(find_lib libcublasLt.so.13)
    [ -n "$b" ] || b=$(find_lib libcublasLt.so.12)
    ANVIL_CUDA_LIB_DIR=$(printf '%s\n' "$a" "$b" | awk 'NF && !seen[$0]++' | paste -sd: -)
    export ANVIL_CUDA_LIB_DIR
  fi
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
  gpu_mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader 2>/dev/null | head -n 1)
  # bench-train's --peak-tflops: a known GPU's dense peak for the dtype; without one, bench-train
  # would calibrate a CPU matmul, which says nothing about a GPU.
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
  # Which build this is: ANVIL_COMMIT, else the COMMIT file the README's build step writes into
  # the dist, else git (the device's copy of the repo may have no .git).
  commit=${ANVIL_COMMIT:-$(cat "$dist/COMMIT" 2>/dev/null || git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)}
  summary_header
}

summary_header() {
  if command -v compute-sanitizer > /dev/null; then
    sanitizer=$(command -v compute-sanitizer)
  elif [ -x /usr/local/cuda/bin/compute-sanitizer ]; then
    sanitizer=/usr/local/cuda/bin/compute-sanitizer
  else
    sanitizer=
  fi
  {
    echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "gpu         ${gpu_name:-none} (${gpu_mem:-?}), driver ${driver:-none}; peak for MFU: $PEAK"
    echo "host        $(uname -r), $(nproc) cores"
    echo "dist        ${dist:-MISSING: build it with ./mvnw -Pdist package -DskipTests}; commit $commit"
    echo "fatbin      $(grep -c anvil_kernels.fatbin "$dist"/lib/anvil-kernels-*.jar 2>/dev/null | grep -q '^[1-9]' && echo 'in the kernels jar' || echo 'MISSING: the dist was built without nvcc')"
    echo "cuda libs   ANVIL_CUDA_LIB_DIR=${ANVIL_CUDA_LIB_DIR:-(none found)}"
    echo "sanitizer   ${sanitizer:-none}"
    echo "torch       $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)"
  } | tee -a "$summary"
}

# A deterministic text file for `train --data`: 12-word lines from a small word list, picked by a
# Park-Miller generator (exact in awk's doubles, so every awk writes the same bytes). The tiny
# model reads it as bytes; GPT-2 presets tokenize it with GPT-2's BPE.
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
# part1 (a): the CUDA test classes from the distribution's test jar. One JVM runs the whole
# dev.anvil.kernels.cuda package; --details=testfeed prints one line per test, which is counted per
# class below. On a GPU every test of the required classes must pass: a skip (no device, no
# library) counts as not proven. CallSiteTest, LibraryLocatorTest and StatusMappingTest need no GPU
# (CallSiteTest skips by design where libcuda exists).
tests_step() {
  no_dist "a-tests" && return
  # FatbinTest runs only when told the build compiled the kernels (Surefire sets it under Maven).
  JDK_JAVA_OPTIONS="-Danvil.cuda.kernels.built=true" \
    run_step a-cuda-tests 300 "$dist/bin/anvil-test" --select-package dev.anvil.kernels.cuda \
      --details=testfeed --disable-ansi-colors
  local log=$work/a-cuda-tests.log st classes
  st=$(status_of $rc)
  # Per class: "JUnit Jupiter > Class [> Nested] > test() :: OUTCOME"; nested Bf16 counted apart.
  LC_ALL=C awk '
    / :: (SUCCESSFUL|FAILED|ABORTED|SKIPPED)$/ {
      outcome = $NF; path = $0; sub(/ :: [A-Z]+$/, "", path)
      n = split(path, p, " > ")
      cls = p[2]; if (n >= 3 && p[3] == "Bf16") cls = cls "$Bf16"
      count[cls, outcome]++; classes[cls] = 1
      if (outcome != "SUCCESSFUL" && !(cls in first)) first[cls] = path
    }
    END {
      split("CudaBackendConformanceTest CudaBackendConformanceTest$Bf16 CudaBackendTest CublasLtDescriptorTest FatbinTest", req, " ")
      for (i = 1; i in req; i++) {
        c = req[i]; ok = count[c, "SUCCESSFUL"] + 0; bad = count[c, "FAILED"] + 0
        ab = count[c, "ABORTED"] + count[c, "SKIPPED"]
        st = (ok > 0 && bad == 0 && ab == 0) ? "PASS" : (bad > 0 ? "FAIL" : "SKIP")
        label = c == "CudaBackendConformanceTest" ? c " (fp32)" : (c == "CudaBackendConformanceTest$Bf16" ? "CudaBackendConformanceTest (bf16)" : c)
        printf "  %-36s %-4s %d passed, %d failed, %d skipped/aborted%s\n", label, st, ok, bad, ab,
          (c in first) ? "; first not passed: " substr(first[c], 1, 90) : ""
      }
    }' "$log" > "$work/a-classes.txt"
  # The step passes only if JUnit did and every required class passed; a skip anywhere is SKIP.
  if [ "$st" = PASS ]; then
    grep -q ' FAIL ' "$work/a-classes.txt" && st=FAIL
    [ "$st" = PASS ] && grep -q ' SKIP ' "$work/a-classes.txt" && st=SKIP
  fi
  record "a-cuda-tests" "$st" "$secs" "junit: $(grep -E 'tests (successful|failed|aborted|skipped)' "$log" | tr -s ' []' ' ' | sed 's/^ //; s/ $//' | paste -sd, - | sed 's/,/, /g')"
  tee -a "$summary" < "$work/a-classes.txt"
  pack
}

# part1 (b): tiny, 20 steps, fp32, same seed and data, on the CPU backend and on CUDA; every step's
# loss within 1e-4 relative (the CUDA backend runs full fp32 cuBLASLt, no TF32).
tiny_args=(--preset tiny --steps 20 --batch-size 8 --seq-len 64 --seed 1337 --eval-every 0 --save-every 0)
tiny_step() {
  no_dist "b-tiny" && return
  local data=$scratch/tiny.txt
  make_text "$data" 1000000
  rm -rf "$scratch/ckpt-tiny-cpu" "$scratch/ckpt-tiny-cuda" "$work"/b-tiny-*.jsonl
  run_step b-tiny-cpu 120 "$anvil" train "${tiny_args[@]}" --data "$data" --backend cpu \
    --save-dir "$scratch/ckpt-tiny-cpu" --metrics-out "$work/b-tiny-cpu.jsonl"
  record "b-tiny-cpu (train, 20 steps)" "$(status_of $rc)" "$secs" "$(tail -n 1 "$work/b-tiny-cpu.log" | cut -c1-120)"
  run_step b-tiny-cuda 180 "$anvil" train "${tiny_args[@]}" --data "$data" --backend cuda \
    --save-dir "$scratch/ckpt-tiny-cuda" --metrics-out "$work/b-tiny-cuda.jsonl"
  local st; st=$(status_of $rc)
  record "b-tiny-cuda (train, 20 steps)" "$st" "$secs" "$([ "$st" = PASS ] && tail -n 1 "$work/b-tiny-cuda.log" | cut -c1-120 || why "$work/b-tiny-cuda.log")"
  bash "$repo/bench/gpu/compare_losses.sh" "$work/b-tiny-cpu.jsonl" "$work/b-tiny-cuda.jsonl" 1e-4 20 \
    > "$work/b-tiny-compare.log" 2>&1
  rc=$?
  record "b-tiny fp32 cuda vs cpu" "$(status_of $rc)" 0 "$(tail -n 1 "$work/b-tiny-compare.log" | cut -c1-150)"
  note "  command: bin/anvil train ${tiny_args[*]} --data tiny.txt --backend cpu|cuda --metrics-out F.jsonl"
  pack
}

# part1 (c): compute-sanitizer on 2 tiny training steps (memcheck, with leak check), then, as time
# allows, memcheck over CudaBackendTest's odd shapes and racecheck on one step. The JVM is a bash
# script that execs java: --target-processes all follows it; --launch-timeout gives the JVM time
# to start before its first CUDA call; --require-cuda-init no keeps a CUDA-less child from being an
# error; --error-exitcode separates "the sanitizer found errors" (86) from the program's own failure.
# Reading the report: each error is a block starting "========= Invalid __global__ read/write of
# size N" (or "Program hit CUDA_ERROR_..." for API errors, "Leaked N bytes" for leaks) naming the
# kernel, thread and block, and the address relative to an allocation; the last line,
# "========= ERROR SUMMARY: N errors", is what decides PASS (0 errors in every process).
sanitize() {
  local name=$1 tool=$2 limit=$3
  shift 3
  local extra=()
  [ "$tool" = memcheck ] && extra=(--leak-check full)
  rm -f "$work/$name".*.txt
  run_step "$name" "$limit" "$sanitizer" --tool "$tool" "${extra[@]}" --target-processes all \
    --launch-timeout 120 --require-cuda-init no --error-exitcode 86 --print-limit 100 \
    --log-file "$work/$name.%p.txt" "$@"
  local st summaries errors kinds
  st=$(status_of $rc)
  summaries=$(cat "$work/$name".*.txt 2>/dev/null | grep -h 'ERROR SUMMARY' || true)
  errors=$(printf '%s\n' "$summaries" | awk '{ for (i = 1; i <= NF; i++) if ($i == "SUMMARY:") n += $(i + 1) } END { print n + 0 }')
  kinds=$(cat "$work/$name".*.txt 2>/dev/null | grep -h '^=========' |
    grep -o -E '(Invalid [^ ]+ [a-z]+|Program hit [A-Z_]+|Leaked [0-9]+ bytes|Race reported|Uninitialized [a-z_]+ [a-z]+|[A-Za-z]+ barrier)' |
    sort | uniq -c | sort -rn | head -n 4 | awk '{ $1 = $1 "x"; print }' | paste -sd';' -)
  if [ "$st" = PASS ] && [ -z "$summaries" ]; then st=FAIL; kinds="no ERROR SUMMARY line: did the sanitizer attach?"; fi
  [ $rc -eq 86 ] && st=FAIL
  # anvil-test exits 0 when its tests skip (no device): nothing was checked then.
  if [ "$st" = PASS ] && grep -q -E '\[ *[1-9][0-9]* tests aborted|\[ *0 tests successful' "$work/$name.log"; then
    st=SKIP; kinds="${kinds:+$kinds; }the tests skipped: nothing ran on a GPU"
  fi
  record "$name" "$st" "$secs" "${errors} errors${kinds:+: $kinds}$([ $rc -ne 0 ] && [ $rc -ne 86 ] && echo "; $(why "$work/$name.log")")"
  pack
}

sanitizer_step() {
  no_dist "c-memcheck" && return
  if [ -z "$sanitizer" ]; then
    record "c-memcheck" SKIP 0 "compute-sanitizer not found (PATH, /usr/local/cuda/bin)"
    return
  fi
  local data=$scratch/tiny.txt
  make_text "$data" 1000000
  local train=("$anvil" train --preset tiny --batch-size 4 --seq-len 64 --seed 1337 --eval-every 0 --save-every 0
               --data "$data" --backend cuda)
  rm -rf "$scratch/ckpt-san"
  sanitize c-memcheck-train memcheck 240 "${train[@]}" --steps 2 --save-dir "$scratch/ckpt-san" \
    --metrics-out "$work/c-memcheck-train.jsonl"
  note "  command: compute-sanitizer --tool memcheck --leak-check full --target-processes all --launch-timeout 120 --require-cuda-init no --error-exitcode 86 bin/anvil train --preset tiny --steps 2 --backend cuda ..."
  # The odd shapes of CudaBackendTest reach the kernels' edge cases, where out-of-bounds accesses hide.
  if [ "$(left)" -gt 150 ]; then
    sanitize c-memcheck-tests memcheck 240 "$dist/bin/anvil-test" --select-class dev.anvil.kernels.cuda.CudaBackendTest \
      --details=summary --disable-ansi-colors
  else
    record c-memcheck-tests SKIP 0 "too little time left"
  fi
  if [ "$(left)" -gt 90 ]; then
    rm -rf "$scratch/ckpt-san"
    sanitize c-racecheck-train racecheck 150 "${train[@]}" --steps 1 --save-dir "$scratch/ckpt-san"
  else
    record c-racecheck-train SKIP 0 "too little time left"
  fi
}

# ---------------------------------------------------------------------------------------------
# part2: Anvil's training speed. bench-train first (the result the speed issue asks for: tokens/s,
# MFU against the dense bf16 peak, JSON). Where bench-train cannot run on CUDA in this build, the
# same shape is timed with `train` itself (its metrics' tokens/s, median after the warmup steps), so
# the session still brings back a number and says which path produced it.

# Anvil's parameter count (GptConfig.parameterCount) and FLOPs/token (Flops.perToken).
preset_shape() { # preset -> "L C nh Tmax Vpadded"
  case "$1" in
    tiny) echo "2 64 4 64 512" ;;
    gpt2-124m) echo "12 768 12 1024 50304" ;;
    gpt2-350m) echo "24 1024 16 1024 50304" ;;
    gpt-1.3b) echo "24 2048 16 2048 50304" ;;
  esac
}

# train_speed NAME PRESET DTYPE B T WARMUP STEPS: runs `train` on random-word text until WARMUP+STEPS
# metric lines exist, then kills it with SIGKILL on purpose (SIGTERM would save a checkpoint, GBs
# for gpt-1.3b), and writes $OUT/NAME.json with bench-train's keys from the measured steps.
train_speed() {
  local name=$1 preset=$2 dtype=$3 b=$4 t=$5 warm=$6 steps=$7 limit=$8
  local log=$work/$name.log metrics=$work/$name.jsonl data=$scratch/words.txt pid t0 n
  make_text "$data" 4000000
  rm -f "$metrics"
  local room=$(($(left) - 15))
  [ "$limit" -gt "$room" ] && limit=$room
  if [ "$limit" -lt 30 ]; then rc=-1; secs=0; echo "skipped: no time" > "$log"; return; fi
  local cmd=("$anvil" train --preset "$preset" --backend "${SPEED_BACKEND:-cuda}" --dtype "$dtype" --batch-size "$b" --seq-len "$t"
             --steps 100000 --eval-every 0 --save-every 0 --save-dir "$scratch/ckpt-$name" --data "$data"
             --metrics-out "$metrics")
  printf '$ %s\n' "${cmd[*]}" > "$log"
  t0=$(now)
  "${cmd[@]}" >> "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    n=$([ -f "$metrics" ] && wc -l < "$metrics" || echo 0)
    [ "$n" -ge $((warm + steps)) ] && break
    [ $(($(now) - t0)) -ge "$limit" ] && { echo "timed out after $limit s" >> "$log"; break; }
    sleep 1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  secs=$(($(now) - t0))
  rm -rf "$scratch/ckpt-$name"
  n=$([ -f "$metrics" ] && wc -l < "$metrics" || echo 0)
  if [ "$n" -lt $((warm + steps)) ]; then rc=1; return; fi
  rc=0
  local shape L C nh Tm Vp N fpt stats med min max peakv
  shape=$(preset_shape "$preset"); read -r L C nh Tm Vp <<< "$shape"
  N=$((Vp * C + Tm * C + L * (12 * C * C + 13 * C) + 2 * C))
  fpt=$((6 * N + 6 * L * C * t))
  stats=$(tail -n +$((warm + 1)) "$metrics" | head -n "$steps" |
    sed -n 's/.*"tokens_per_s":\([0-9.eE+-]*\).*/\1/p' | median_min_max)
  read -r med min max <<< "$stats"
  case "$PEAK:$dtype" in
    h100-sxm:bf16|h200:bf16) peakv=989 ;; h100-pcie:bf16) peakv=756 ;; a100:bf16) peakv=312 ;;
    h100-sxm:fp32|h200:fp32) peakv=67 ;; h100-pcie:fp32) peakv=51 ;; a100:fp32) peakv=19.5 ;;
    *) peakv=$(echo "$PEAK" | grep -E '^[0-9.]+$' || echo 989) ;;
  esac
  LC_ALL=C awk -v name="$name" -v preset="$preset" -v dtype="$dtype" -v b="$b" -v t="$t" -v warm="$warm" \
      -v steps="$steps" -v N="$N" -v fpt="$fpt" -v med="$med" -v min="$min" -v max="$max" -v peak="$peakv" \
      -v gpu="${gpu_name:-no GPU}" -v be="${SPEED_BACKEND:-cuda}" -v L="$L" -v C="$C" -v nh="$nh" -v Tm="$Tm" -v Vp="$Vp" -v ts="$(date -u +%Y-%m-%dT%H:%M:%SZ)" 'BEGIN {
    tok = b * t; ach = fpt * med / 1e12
    printf "{\n  \"anvil_version\" : \"see summary.txt\",\n  \"timestamp\" : \"%s\",\n  \"preset\" : \"%s\",\n", ts, preset
    printf "  \"model\" : \"GptConfig[L=%d, C=%d, nh=%d, T=%d, V=%d (padded %d)]\",\n", L, C, nh, Tm, (Vp == 512 ? 512 : 50257), Vp
    printf "  \"parameters\" : %d,\n  \"backend\" : \"anvil train --backend %s on %s (bench-train fallback)\",\n", N, be, gpu
    printf "  \"dtype\" : \"%s\",\n  \"threads\" : null,\n  \"batch_size\" : %d,\n  \"seq_len\" : %d,\n  \"world_size\" : 1,\n", dtype, b, t
    printf "  \"steps\" : %d,\n  \"warmup\" : %d,\n  \"tokens_per_step\" : %d,\n", steps, warm, tok
    printf "  \"tokens_per_s\" : { \"median\" : %.6g, \"min\" : %.6g, \"max\" : %.6g },\n", med, min, max
    printf "  \"step_ms\" : { \"median\" : %.6g, \"min\" : %.6g, \"max\" : %.6g },\n", tok / med * 1e3, tok / max * 1e3, tok / min * 1e3
    printf "  \"phase_ms\" : { },\n  \"flops_per_token\" : %d,\n  \"achieved_tflops\" : %.6g,\n", fpt, ach
    printf "  \"peak_tflops\" : %s,\n  \"peak_source\" : \"dense %s peak of the GPU\",\n  \"mfu\" : %.6g,\n", peak, dtype, ach / peak
    printf "  \"heap_peak_bytes\" : 0,\n  \"off_heap_peak_bytes\" : 0,\n  \"device_peak_bytes\" : null,\n"
    printf "  \"price_per_gpu_hour\" : null,\n  \"cost_per_million_tokens\" : null,\n  \"final_loss\" : 0\n}\n"
  }' > "$OUT/$name.json"
}

# A one-line digest of a bench-train-style JSON: tokens/s, MFU, the bar.
digest() {
  local f=$1 tps mfu
  tps=$(json_num "$f" median tokens_per_s)
  mfu=$(json_num "$f" mfu)
  LC_ALL=C awk -v tps="$tps" -v mfu="$mfu" -v bar="$bar" -v big="$2" 'BEGIN {
    printf "%.0f tokens/s, MFU %s", tps, (mfu == "" || mfu == "null") ? "n/a" : sprintf("%.2f%%", 100 * mfu)
    if (big) printf ", %.0f%% of the %d tokens/s bar (%s)", 100 * tps / bar, bar, (tps >= bar ? "MET" : "not met") }'
}

# anvil_speed PRESET B T WARMUP STEPS LIMIT: bench-train bf16 (halving B once on out-of-memory),
# else the train fallback, bf16 then fp32; $OUT/anvil-PRESET.json holds whichever ran.
anvil_speed() {
  local preset=$1 b=$2 t=$3 warm=$4 steps=$5 limit=$6 big=0 name=anvil-$1 log
  local be=${SPEED_BACKEND:-cuda} dt=${SPEED_DTYPE:-bf16}   # other values only for the selftest part
  [ "$preset" = gpt-1.3b ] && big=1
  no_dist "d-$name" && return
  local bt=(bench-train --preset "$preset" --backend "$be" --dtype "$dt" --seq-len "$t" --steps "$steps"
            --warmup "$warm" --peak-tflops "$PEAK" --csv "$work/bench-train.csv")
  start_smi "$work/d-$name-$dt.smi.csv"
  run_step "d-$name-$dt" "$limit" "$anvil" "${bt[@]}" --batch-size "$b" --json "$OUT/$name.json"
  stop_smi
  log=$work/d-$name-$dt.log
  if [ $rc -ne 0 ] && [ $rc -ne -1 ] && [ "$b" -gt 1 ] && grep -qi -E 'out of memory|OUT_OF_MEMORY' "$log"; then
    record "d-$name-$dt B=$b" FAIL "$secs" "out of memory: retrying with B=$((b / 2))"
    b=$((b / 2))
    start_smi "$work/d-$name-$dt-b$b.smi.csv"
    run_step "d-$name-$dt-b$b" "$limit" "$anvil" "${bt[@]}" --batch-size "$b" --json "$OUT/$name.json"
    stop_smi
    log=$work/d-$name-$dt-b$b.log
  fi
  if [ $rc -eq 0 ]; then
    record "d-$name bench-train $dt" PASS "$secs" "B=$b T=$t: $(digest "$OUT/$name.json" $big); $(smi_digest "$work/d-$name-$dt.smi.csv")"
    note "  command: bin/anvil ${bt[*]} --batch-size $b --json $name.json"
    pack
    return
  fi
  record "d-$name bench-train $dt" "$(status_of $rc)" "$secs" "$(why "$log")"
  [ $rc -eq -1 ] && return
  rm -f "$OUT/$name.json"
  # Fallback: time `train` itself, bf16 first, then fp32 (fp32 weights and activations take twice
  # the memory: half the batch for gpt-1.3b).
  local dtype fb
  for dtype in bf16 fp32; do
    fb=$b
    [ "$dtype" = fp32 ] && [ "$preset" = gpt-1.3b ] && fb=$((b / 2 > 0 ? b / 2 : 1))
    start_smi "$work/d-$name-train-$dtype.smi.csv"
    train_speed "d-$name-train-$dtype" "$preset" "$dtype" "$fb" "$t" "$warm" "$steps" "$limit"
    stop_smi
    if [ $rc -eq 0 ]; then
      mv -f "$OUT/d-$name-train-$dtype.json" "$OUT/$name.json"
      record "d-$name train $dtype (fallback)" PASS "$secs" "B=$fb T=$t: $(digest "$OUT/$name.json" $big); $(smi_digest "$work/d-$name-train-$dtype.smi.csv")"
      note "  command: bin/anvil train --preset $preset --backend ${SPEED_BACKEND:-cuda} --dtype $dtype --batch-size $fb --seq-len $t --metrics-out m.jsonl (killed after $((warm + steps)) steps; median tokens/s of the last $steps)"
      pack
      return
    fi
    record "d-$name train $dtype (fallback)" "$(status_of $rc)" "$secs" "$(why "$work/d-$name-train-$dtype.log")"
    pack
  done
}

# part3 (e): the PyTorch baseline of the same shapes, and bench-compare against Anvil's JSON
# when part2 ran in the same call (else compare the files back home: see README).
torch_speed() {
  local preset=$1 b=$2 t=$3 warm=$4 steps=$5 limit=$6 name=torch-$1
  if ! python3 -c 'import torch' > /dev/null 2>&1; then
    record "e-$name" SKIP 0 "python3 cannot import torch"
    return
  fi
  start_smi "$work/e-$name.smi.csv"
  PYTHONUNBUFFERED=1 run_step "e-$name" "$limit" python3 "$repo/bench/pytorch/bench_gpt.py" --preset "$preset" \
    --batch-size "$b" --seq-len "$t" --warmup "$warm" --steps "$steps" --peak-tflops "$PEAK" --auto-accum \
    --device "${TORCH_DEVICE:-cuda}" --json "$OUT/$name.json"
  stop_smi
  if [ $rc -eq 0 ]; then
    record "e-$name" PASS "$secs" "B=$b T=$t: $(digest "$OUT/$name.json" 0); $(smi_digest "$work/e-$name.smi.csv"); $(grep -o '"compiled": [a-z]*' "$OUT/$name.json")"
    note "  command: python3 bench/pytorch/bench_gpt.py --preset $preset --batch-size $b --seq-len $t --warmup $warm --steps $steps --peak-tflops $PEAK --auto-accum --json $name.json"
    if [ -n "$dist" ] && [ -x "$anvil" ]; then
      local other=$OUT/anvil-$preset.json
      if [ -s "$other" ]; then
        "$anvil" bench-compare "$other" "$OUT/$name.json" > "$work/e-compare-$preset.log" 2>&1
        note "  bench-compare anvil-$preset.json $name.json:"
        grep -v WARNING "$work/e-compare-$preset.log" | grep -E '^ |tokens/s median|MFU|step ms median|backend|B x T' | sed 's/^/    /' | tee -a "$summary"
      else
        # Still check that bench-compare reads the file, so the comparison back home will work.
        "$anvil" bench-compare "$OUT/$name.json" > "$work/e-compare-$preset.log" 2>&1 &&
          note "  bench-compare reads $name.json (no anvil-$preset.json in this call: compare back home)" ||
          note "  bench-compare could not read $name.json: see e-compare-$preset.log"
      fi
    fi
  else
    record "e-$name" "$(status_of $rc)" "$secs" "$(why "$work/e-$name.log")"
  fi
  pack
}

# ---------------------------------------------------------------------------------------------
begin_part() {
  work=$scratch/$1
  rm -rf "$work"
  mkdir -p "$work"
  note ""
  note "=== $1 ($(date -u +%H:%M:%SZ), $(left) s of the budget left)"
  probe_env "$1"
}

: > "$summary"
note "Anvil GPU session: bench/gpu/session.sh $*"
for part in "$@"; do
  case "$part" in
    env)
      begin_part env ;;
    part1)
      begin_part part1
      tests_step
      tiny_step
      sanitizer_step ;;
    part2)
      begin_part part2
      anvil_speed gpt-1.3b "${BS_1P3B:-8}" 2048 3 10 270
      anvil_speed gpt2-124m "${BS_124M:-16}" 1024 3 20 150 ;;
    selftest)
      # The plumbing of part2 and part3 on the CPU, tiny model, for a machine with no GPU: the
      # bench-train path (fp32), the train fallback (bf16 refused on the CPU, then fp32), the
      # PyTorch script (python3 with torch needed) and bench-compare. Proves nothing about CUDA.
      begin_part selftest
      SPEED_BACKEND=cpu SPEED_DTYPE=fp32 anvil_speed tiny 8 64 2 5 120
      [ -f "$OUT/anvil-tiny.json" ] && mv "$OUT/anvil-tiny.json" "$OUT/anvil-tiny-bench-train.json"
      SPEED_BACKEND=cpu SPEED_DTYPE=bf16 anvil_speed tiny 8 64 2 5 120
      TORCH_DEVICE=cpu torch_speed tiny 8 64 2 5 120 ;;
    part3)
      begin_part part3
      torch_speed gpt-1.3b "${BS_1P3B:-8}" 2048 3 10 270
      torch_speed gpt2-124m "${BS_124M:-16}" 1024 3 20 180 ;;
  esac
  pack
done
note ""
note "done in $(($(now) - t_start)) s; files in $OUT: $(ls "$OUT" | paste -sd' ' -)"
