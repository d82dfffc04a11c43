#!/usr/bin/env bash
# side_by_side.sh: Anvil's all-reduce and PyTorch gloo's on the same sizes and rank counts, one process per rank on
# this machine, measured one after the other in the same run; prints both busbw figures and their ratio.
#
#   bench/allreduce/side_by_side.sh                          # 2 and 4 ranks, 256KB..64MB, --transport tcp and shm
#   bench/allreduce/side_by_side.sh --ranks "4" --min-size 64MB --max-size 64MB --transports tcp
#
# Options: --ranks "R ..." (default "2 4"), --min-size, --max-size (default 256KB, 64MB; sizes grow by 4x),
# --transports "tcp shm auto" (default "tcp shm"), --iters N (default 20), --warmup-seconds S (default 3: four JVMs
# on two cores spend their first seconds compiling). Needs a build (./mvnw -q package -DskipTests) and, for gloo,
# PyTorch: apt-get install python3-torch (Debian/Ubuntu; run with /usr/bin/python3) or pip install torch; set
# PYTHON to choose the interpreter. Run it alone on the machine (e.g. under cpu-exclusive): the ratio is only
# meaningful when nothing else competes for the cores.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$here")")"

ranks="2 4"
min_size=256KB
max_size=64MB
transports="tcp shm"
iters=20
warmup_seconds=3
python="${PYTHON:-/usr/bin/python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks="$2"; shift 2 ;;
    --min-size) min_size="$2"; shift 2 ;;
    --max-size) max_size="$2"; shift 2 ;;
    --transports) transports="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --warmup-seconds) warmup_seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "side_by_side.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! "$python" -c 'import torch.distributed' 2>/dev/null; then
  echo "side_by_side.sh: $python cannot import torch.distributed, so there is no gloo to compare with." >&2
  echo "  Install PyTorch: apt-get install python3-torch (Debian/Ubuntu), or pip install torch; or set PYTHON." >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Rows "elements busbw" from a table with allreduce-bench's columns (size elements time algbw busbw).
rows() {
  sed 's/^\[rank 0\] //' | awk 'NF == 5 && $2 ~ /^[0-9]+$/ && $5 ~ /^[0-9.]+$/ { print $1, $2, $5 }'
}

printf '%-5s %-9s %9s %13s %12s %7s\n' ranks transport size "anvil busbw" "gloo busbw" ratio
for r in $ranks; do
  "$python" "$here/gloo_allreduce.py" --ranks "$r" --min-size "$min_size" --max-size "$max_size" \
    --iters "$iters" --warmup "$((iters / 4 + 1))" > "$tmp/gloo.out" 2>"$tmp/gloo.err" \
    || { cat "$tmp/gloo.err" >&2; exit 1; }
  rows < "$tmp/gloo.out" > "$tmp/gloo.rows"
  for t in $transports; do
    "$repo/bin/launch" --nproc-per-node "$r" -- allreduce-bench --transport "$t" --size "$max_size" \
      --min-size "$min_size" --iters "$iters" --warmup-seconds "$warmup_seconds" > "$tmp/anvil.out" 2>&1 \
      || { cat "$tmp/anvil.out" >&2; exit 1; }
    grep '^\[rank 0\]' "$tmp/anvil.out" | rows > "$tmp/anvil.rows"
    # Join on the element count; print a row for every size both measured.
    awk -v r="$r" -v t="$t" 'NR == FNR { gloo[$2] = $3; next }
      ($2 in gloo) { printf "%-5s %-9s %9s %13.3f %12.3f %6.2fx\n", r, t, $1, $3, gloo[$2], $3 / gloo[$2] }' \
      "$tmp/gloo.rows" "$tmp/anvil.rows"
  done
done
echo "busbw in GB/s (nccl-tests' definition: algbw x 2(R-1)/R); gloo measured first at each rank count, then Anvil."
