#!/usr/bin/env bash
# Runs deploy/slurm/train.sbatch under a real one-node Slurm on this machine, with 2 CPU ranks:
#   1. a job runs to the end;
#   2. another is preempted (scancel --signal=TERM): every rank checkpoints and exits 0;
#   3. scontrol requeue restarts it: it resumes and ends with the uninterrupted job's final loss
#      (and the same loss at every step).
# Needs root: it installs Debian's slurm-wlm and munge when missing, and starts munged, slurmctld and
# slurmd (on ports of its own, with state under a temporary directory), stopping them at the end.
# Without root it says why and exits 0. Run it from anywhere after ./mvnw package; CI bounds it with
# `timeout 300`. KEEP=1 keeps the work directory (logs, checkpoints) for a look afterwards.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
say() { echo "slurm-test: $*"; }
fail() { say "FAILED: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  say "skipped: needs root (to install slurm-wlm and munge and to run slurmctld and slurmd)"
  exit 0
fi
if ! compgen -G "$repo/bench/target/anvil-bench-*.jar" > /dev/null; then
  fail "Anvil is not built; run ./mvnw -q package -DskipTests first"
fi
if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null || ! command -v munged > /dev/null; then
  say "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge > /dev/null || { apt-get update -q > /dev/null && apt-get install -y -q slurm-wlm munge > /dev/null; } \
    || fail "could not install slurm-wlm and munge with apt-get"
fi

work="$(mktemp -d /tmp/anvil-slurm.XXXXXX)"
chmod 755 "$work"
started=()
cleanup() {
  set +e
  [ -n "${SLURM_CONF:-}" ] && scancel --quiet --user=root 2> /dev/null
  for pidfile in "${started[@]}"; do
    [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2> /dev/null
  done
  sleep 1
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# munge authenticates Slurm's messages; use the machine's munged when one runs, else start one.
if ! munge -n 2> /dev/null | unmunge > /dev/null 2>&1; then
  install -d -o munge -g munge -m 0755 /run/munge "$work/munge"
  runuser -u munge -- /usr/sbin/munged --pid-file="$work/munge/munged.pid" || fail "munged did not start"
  started+=("$work/munge/munged.pid")
  munge -n | unmunge > /dev/null || fail "munge does not work"
fi

node="$(hostname -s)"
cpus="$(nproc)"
port=$((17000 + RANDOM % 2000))
mkdir -p "$work/state" "$work/spool" "$work/home"
export SLURM_CONF="$work/slurm.conf"
cat > "$SLURM_CONF" << EOF
ClusterName=anvil-test
SlurmctldHost=$node
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
NodeName=$node CPUs=$cpus State=UNKNOWN
PartitionName=anvil Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -i || fail "slurmctld did not start: $(tail -n 5 "$work/slurmctld.log")"
started+=("$work/slurmctld.pid")
slurmd || fail "slurmd did not start: $(tail -n 5 "$work/slurmd.log")"
started+=("$work/slurmd.pid")
for _ in $(seq 60); do
  [[ "$(sinfo -h -n "$node" -o %T 2> /dev/null)" == idle* ]] && break
  sleep 1
done
[[ "$(sinfo -h -n "$node" -o %T)" == idle* ]] || fail "node $node is not idle: $(sinfo -N -l)"
say "Slurm $(slurmd -V | cut -d' ' -f2) up on $node ($cpus CPUs), config $SLURM_CONF"

# One job = 2 ranks of 1 CPU each on a CPU-only node. A second's worth of mini steps per ~15 steps,
# so the preemption lands mid-run; checkpoints every 50 steps and at the SIGTERM.
steps=300
submit() { # NAME [sbatch options...]: submits train.sbatch; prints the job id
  local name=$1
  shift
  HOME="$work/home" sbatch --parsable --job-name="$name" --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 \
    --gpus-per-node=0 --time=10 --output="$work/%x.out" "$@" "$repo/deploy/slurm/train.sbatch" \
    --steps "$steps" --batch-size 8 --save-every 50 --eval-every 0 --sample-tokens 0 --comm-timeout 60 \
    --save-dir "$work/runs/$name" --metrics-out "$work/runs/$name/metrics.jsonl"
}
field() { scontrol show job "$1" -o | tr ' ' '\n' | sed -n "s/^$2=//p"; }
await_end() { # JOB RESTARTS [LOG]: waits until the job ended after that many restarts (and, given its log,
  # once that run has started: right after a requeue Slurm may still show the first run's end); prints its state
  for _ in $(seq 240); do
    local state
    state="$(field "$1" JobState)"
    if [ "$(field "$1" Restarts)" = "$2" ] && [[ "$state" =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$ ]] \
        && { [ -z "${3:-}" ] || grep -q "restart $2:" "$3"; }; then
      echo "$state $(field "$1" ExitCode)"
      return
    fi
    sleep 0.5
  done
  fail "job $1 did not end: $(scontrol show job "$1" -o)${3:+; the end of its log:
$(tail -n 20 "$3")}"
}
final_loss() { sed -n 's/.*done: [0-9]* steps, final loss \([0-9.]*\).*/\1/p' "$1" | tail -n 1; }
losses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$1"; }
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }
show() { # LOG [FROM]: the job's log (from the first line matching FROM), less progress lines
  say "--- $1"
  # grep -v finds nothing when the job printed nothing: not a failure of its own (set -o pipefail)
  sed -n "/${2:-.}/,\$p" "$1" | { grep -v -e '^step [0-9]*/' -e 'WARNING: Using incubator' || true; } | sed 's/^/    /'
}

# 1. Uninterrupted.
whole="$(submit uninterrupted)"
say "job $whole (uninterrupted) submitted"
read -r state code <<< "$(await_end "$whole" 0)"
show "$work/uninterrupted.out"
[ "$state $code" = "COMPLETED 0:0" ] || fail "job $whole ended $state, exit $code"
expected="$(final_loss "$work/uninterrupted.out")"
[ -n "$expected" ] || fail "job $whole printed no final loss"
say "1. job $whole completed: $steps steps, final loss $expected"

# 2. Preempted: SIGTERM to every rank once some steps are done.
job="$(submit preempted)"
say "job $job (preempted) submitted"
for _ in $(seq 240); do
  [ "$(lines "$work/runs/preempted/metrics.jsonl")" -ge 20 ] && break
  sleep 0.5
done
[ "$(lines "$work/runs/preempted/metrics.jsonl")" -ge 20 ] || fail "job $job made no progress: $(cat "$work/preempted.out")"
scancel --signal=TERM "$job"
read -r state code <<< "$(await_end "$job" 0)"
show "$work/preempted.out"
[ "$state $code" = "COMPLETED 0:0" ] || fail "job $job ended $state, exit $code after SIGTERM (every rank must exit 0)"
stopped="$(sed -n 's/.*stopped by SIGTERM after step \([0-9]*\); saved .*/\1/p' "$work/preempted.out")"
[ -n "$stopped" ] && [ "$stopped" -lt "$steps" ] || fail "job $job did not stop early with a checkpoint"
[ -d "$work/runs/preempted/$(printf 'step_%08d' "$stopped")" ] || fail "no checkpoint of step $stopped"
say "2. job $job got SIGTERM: every rank exited 0 (job COMPLETED, exit 0:0), checkpoint of step $stopped saved"

# 3. Requeued: the same job runs again and resumes. slurmd refuses to start a job whose credential was revoked
# (by the kill) in the same second as the new one was issued ("Job credential revoked": the job fails at once,
# exit 1, no output), and Slurm's own delay for requeued jobs is overridden below: let a second pass first.
sleep 2
scontrol requeue "$job"
scontrol update jobid="$job" starttime=now 2> /dev/null || true # a requeued job may otherwise wait a while
read -r state code <<< "$(await_end "$job" 1 "$work/preempted.out")"
show "$work/preempted.out" "restart 1:"
[ "$state $code" = "COMPLETED 0:0" ] || fail "requeued job $job ended $state, exit $code"
grep -q "resuming from .*step_$(printf '%08d' "$stopped") after step $stopped" "$work/preempted.out" \
  || fail "requeued job $job did not resume from step $stopped"
actual="$(final_loss "$work/preempted.out")"
[ "$actual" = "$expected" ] || fail "requeued job $job ended with loss $actual, the uninterrupted job with $expected"
[ "$(losses "$work/runs/preempted/metrics.jsonl")" = "$(losses "$work/runs/uninterrupted/metrics.jsonl")" ] \
  || fail "the requeued job's per-step losses differ from the uninterrupted job's"
say "3. requeued job $job resumed after step $stopped and ended with final loss $actual, as the uninterrupted job;"
say "   all $steps per-step losses equal"
say "PASSED"
