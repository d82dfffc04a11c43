#!/usr/bin/env bash
# emulated_hosts.sh: Anvil's all-reduce between emulated hosts on this machine: one network namespace per rank, each
# joined to a bridge by a veth pair whose host end is shaped with tc to a line rate (and a one-way delay where the
# kernel has netem), one rank per namespace; prints busbw against the line rate.
#
#   sudo bench/allreduce/emulated_hosts.sh                          # 4 ranks, 64MB, at 1 Gbit/s and 10 Gbit/s
#   sudo bench/allreduce/emulated_hosts.sh --ranks 2 --rates "1gbit" --delay 5ms --size 16MB
#
# Options: --ranks R (default 4), --rates "1gbit 10gbit" (tc rates), --delay D (default 2ms one way, on every
# host's egress, so 4 ms round trip), --size S (default 64MB), --iters N (default 5), --comm-slice S,
# --comm-channels N (passed to allreduce-bench). Namespaces differ, so --transport auto picks TCP between the ranks,
# as between real hosts. Needs root and iproute2 (ip, tc); skips, saying why, otherwise. Everything it creates
# (namespaces anvil-h*, bridge anvil-br0) is removed on exit. Needs a build: ./mvnw -q package -DskipTests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$here")")"

ranks=4
rates="1gbit 10gbit"
delay=2ms
size=64MB
iters=5
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks="$2"; shift 2 ;;
    --rates) rates="$2"; shift 2 ;;
    --delay) delay="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --iters) iters="$2"; shift 2 ;;
    --comm-slice|--comm-channels) extra+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "emulated_hosts.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

skip() {
  echo "emulated_hosts.sh: skipped: $*" >&2
  exit 0
}
[ "$(id -u)" -eq 0 ] || skip "network namespaces and tc need root (run it with sudo)"
command -v ip > /dev/null && command -v tc > /dev/null || skip "iproute2 (ip, tc) is not installed"
[ -x "$repo/bin/anvil" ] || skip "bin/anvil is missing"

bridge=anvil-br0
ns() { echo "anvil-h$1"; }
cleanup() {
  for ((i = 0; i < ranks; i++)); do ip netns del "$(ns "$i")" 2> /dev/null || true; done
  ip link del "$bridge" 2> /dev/null || true
}
trap cleanup EXIT
cleanup

ip link add "$bridge" type bridge 2> /dev/null || skip "cannot create a bridge (no bridge support in this kernel)"
ip link set "$bridge" up
for ((i = 0; i < ranks; i++)); do
  ip netns add "$(ns "$i")"
  ip link add "anvil-v$i" type veth peer name "anvil-p$i" || skip "cannot create veth pairs"
  ip link set "anvil-v$i" netns "$(ns "$i")"
  ip link set "anvil-p$i" master "$bridge" up
  ip -n "$(ns "$i")" addr add "10.77.0.$((i + 1))/24" dev "anvil-v$i"
  ip -n "$(ns "$i")" link set "anvil-v$i" up
  ip -n "$(ns "$i")" link set lo up
done

# Probe netem once: some kernels are built without it.
netem=yes
if ! ip netns exec "$(ns 0)" tc qdisc add dev anvil-v0 root netem delay "$delay" 2> /dev/null; then
  netem=no
  echo "emulated_hosts.sh: this kernel has no netem qdisc (sch_netem): the links get the line rate but no added" \
    "delay; the round trip is the bridge's (tens of microseconds)" >&2
else
  ip netns exec "$(ns 0)" tc qdisc del dev anvil-v0 root
fi

# Line rate on every host's egress: an htb class (burst sized for the rate), with netem's delay under it.
shape() {
  local rate="$1" i dev
  for ((i = 0; i < ranks; i++)); do
    dev="anvil-v$i"
    ip netns exec "$(ns "$i")" tc qdisc del dev "$dev" root 2> /dev/null || true
    ip netns exec "$(ns "$i")" tc qdisc add dev "$dev" root handle 1: htb default 10 r2q 1000
    ip netns exec "$(ns "$i")" tc class add dev "$dev" parent 1: classid 1:10 htb rate "$rate" ceil "$rate" \
      burst 1mb cburst 1mb quantum 200000
    if [ "$netem" = yes ]; then
      ip netns exec "$(ns "$i")" tc qdisc add dev "$dev" parent 1:10 handle 10: netem delay "$delay" \
        limit 1000000
    fi
  done
}

# Bytes per second of a tc rate such as 1gbit, 10gbit or 500mbit.
bytes_per_second() {
  awk -v r="$1" 'BEGIN { n = r + 0; u = tolower(r); sub(/^[0-9.]+/, "", u);
    m = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : 1; printf "%.0f", n * m / 8 }'
}

token="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port=29555
summary=()
for rate in $rates; do
  shape "$rate"
  echo "== $ranks ranks, one per namespace, $rate per host egress$([ "$netem" = yes ] && echo ", $delay one-way delay")"
  pids=()
  for ((i = ranks - 1; i >= 0; i--)); do
    ip netns exec "$(ns "$i")" env RANK="$i" WORLD_SIZE="$ranks" LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 \
      MASTER_ADDR=10.77.0.1 MASTER_PORT="$port" ANVIL_JOB_TOKEN="$token" \
      "$repo/bin/anvil" allreduce-bench --size "$size" --min-size "$size" --iters "$iters" --warmup 1 \
      --warmup-seconds 3 "${extra[@]}" > "/tmp/anvil-emulated-$i.log" 2>&1 &
    pids+=($!)
  done
  status=0
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  if [ "$status" -ne 0 ]; then
    cat /tmp/anvil-emulated-*.log >&2
    echo "emulated_hosts.sh: a rank failed" >&2
    exit 1
  fi
  grep -E "allreduce-bench|size|^ +[0-9]" /tmp/anvil-emulated-0.log
  busbw="$(awk 'NF == 5 && $2 ~ /^[0-9]+$/ { b = $5 } END { print b }' /tmp/anvil-emulated-0.log)"
  line="$(bytes_per_second "$rate")"
  summary+=("$(awk -v r="$rate" -v b="$busbw" -v l="$line" -v s="$size" \
    'BEGIN { printf "%-8s %8s  busbw %.3f GB/s = %5.1f%% of line rate (%.3f GB/s)", r, s, b, 100 * b * 1e9 / l, l / 1e9 }')")
  port=$((port + 1))
done
echo
printf '%s\n' "${summary[@]}"
