#!/usr/bin/env bash
# compare_losses.sh REFERENCE.jsonl CANDIDATE.jsonl [TOLERANCE] [STEPS]
#
# Compares the per-step training losses of two `anvil train --metrics-out` files (one JSON object per
# line, e.g. the CPU backend's run and the CUDA backend's run of the same seed and data): every step
# must be in both, finite, and within TOLERANCE relative difference (default 1e-4). Prints the
# table and one closing line, PASS or FAIL with the worst relative difference and its step; exits
# 0 on PASS, 1 on FAIL, 2 on bad arguments. Plain awk, so it runs where there is no Java or Python.
# With STEPS, each file must hold exactly that many steps (a run that died early must not pass).
set -u
if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "usage: compare_losses.sh REFERENCE.jsonl CANDIDATE.jsonl [TOLERANCE] [STEPS]" >&2
  exit 2
fi
ref=$1 cand=$2 tol=${3:-1e-4} want=${4:-0}
for f in "$ref" "$cand"; do
  [ -r "$f" ] || { echo "FAIL: cannot read $f"; exit 1; }
done

# LC_ALL=C: a locale with a decimal comma would misread the numbers.
LC_ALL=C awk -v tol="$tol" -v want="$want" -v refname="$ref" -v candname="$cand" '
  # The value of "key" in a flat JSON object on one line (the metrics lines are flat), or "".
  function field(line, key,    i, rest) {
    i = index(line, "\"" key "\":")
    if (i == 0) return ""
    rest = substr(line, i + length(key) + 3)
    sub(/^[ ]*/, "", rest)
    sub(/[,}].*$/, "", rest)
    return rest
  }
  function finite(s) { return s ~ /^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$/ }
  function abs(x) { return x < 0 ? -x : x }
  FNR == 1 { file++ }
  /"step":/ {
    s = field($0, "step") + 0
    # "loss" must not match inside "val_loss": field() looks for the quoted key, quotes included.
    l = field($0, "loss"); g = field($0, "grad_norm")
    if (file == 1) { rl[s] = l; rg[s] = g; rn++; if (s > maxs) maxs = s }
    else           { cl[s] = l; cg[s] = g; cn++; if (s > maxs) maxs = s }
  }
  END {
    bad = 0; worst = -1; worstStep = 0; worstG = 0
    if (want > 0 && (rn != want || cn != want)) {
      printf "%s has %d steps, %s has %d; expected %d each\n", refname, rn, candname, cn, want
      bad = 1
    }
    printf "%5s  %-14s %-14s %-10s %-10s\n", "step", "loss ref", "loss cand", "rel diff", "gnorm rel"
    for (s = 1; s <= maxs; s++) {
      if (!(s in rl) || !(s in cl)) { printf "%5d  missing in %s\n", s, (s in rl) ? candname : refname; bad = 1; continue }
      if (!finite(rl[s]) || !finite(cl[s])) { printf "%5d  %-14s %-14s not finite\n", s, rl[s], cl[s]; bad = 1; continue }
      r = rl[s] + 0; c = cl[s] + 0
      d = abs(c - r) / (abs(r) > 0 ? abs(r) : 1)
      gd = (finite(rg[s]) && finite(cg[s])) ? abs(cg[s] - rg[s]) / (abs(rg[s]) > 0 ? abs(rg[s]) : 1) : -1
      flag = d > tol ? "  <-- over " tol : ""
      printf "%5d  %-14.8f %-14.8f %-10.3e %-10.3e%s\n", s, r, c, d, gd, flag
      if (d > tol) bad = 1
      if (d > worst) { worst = d; worstStep = s }
      if (gd > worstG) worstG = gd
    }
    if (maxs == 0) { print "no steps found"; bad = 1 }
    printf "%s: worst relative loss difference %.3e at step %d (tolerance %s, %d steps); worst grad-norm difference %.3e (not judged)\n",
      bad ? "FAIL" : "PASS", worst < 0 ? 0 : worst, worstStep, tol, maxs, worstG
    exit bad
  }' "$ref" "$cand"
