#!/usr/bin/env bash
# record.sh DIR... : files the results of GPU session calls under bench/results/, on the machine
# with the repository and a JDK (not on the GPU machine).
#
# Each DIR is what one device call brought back (the tool's files_at: summary.txt, <part>-logs.tar.gz,
# anvil-*.json, torch-*.json). They go to bench/results/<date>-<gpu>/ (date and GPU read from the
# summary): summary-<parts>.txt, the JSON files, and, where both an Anvil and a PyTorch result of a
# preset exist, compare-<preset>.txt from `bin/anvil bench-compare` (Anvil first, so the ratios read
# "PyTorch / Anvil"). The log archives are left where they are: see bench/gpu/README.md for what to
# keep. Prints the folder it wrote.
set -u
set -o pipefail
if [ $# -lt 1 ]; then
  echo "usage: bench/gpu/record.sh DIR... (each DIR holds a summary.txt from bench/gpu/session.sh)" >&2
  exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

first=$1/summary.txt
[ -r "$first" ] || { echo "record.sh: no $first" >&2; exit 1; }
date=$(awk '$1 == "date" { print substr($2, 1, 10); exit }' "$first")
gpu=$(awk '$1 == "gpu" { $1 = ""; sub(/ \(.*/, ""); print; exit }' "$first" | tr -cs 'A-Za-z0-9' '-' | sed 's/^-*//; s/-*$//' | tr 'A-Z' 'a-z')
dest=$repo/bench/results/${date:-undated}-${gpu:-unknown-gpu}
mkdir -p "$dest"

for dir in "$@"; do
  [ -r "$dir/summary.txt" ] || { echo "record.sh: skipping $dir (no summary.txt)" >&2; continue; }
  parts=$(sed -n '1s/.*session.sh //p' "$dir/summary.txt" | tr ' ' '-')
  cp "$dir/summary.txt" "$dest/summary-${parts:-run}.txt"
  for f in "$dir"/*.json; do
    [ -e "$f" ] && cp "$f" "$dest/"
  done
done

for anvil_json in "$dest"/anvil-*.json; do
  [ -e "$anvil_json" ] || continue
  preset=${anvil_json##*/anvil-}
  preset=${preset%.json}
  torch_json=$dest/torch-$preset.json
  if [ -e "$torch_json" ]; then
    (cd "$dest" && "$repo/bin/anvil" bench-compare "anvil-$preset.json" "torch-$preset.json" 2>/dev/null) > "$dest/compare-$preset.txt" ||
      echo "record.sh: bench-compare failed for $preset (is Anvil built? ./mvnw -q package -DskipTests)" >&2
  fi
done
echo "$dest"
ls -1 "$dest"
