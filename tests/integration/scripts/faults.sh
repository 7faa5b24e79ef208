#!/usr/bin/env bash
# Fault-injection suite: real processes through `accel launch`, Gloo on CPU. Each scenario injects
# one failure into a training run (tests/integration/faults/fault_worker.cpp) and checks that
#   - the launcher exits non-zero, within the configured timeout,
#   - its message names the failing rank and the cause,
#   - no process of the run is left,
#   - the last complete checkpoint loads,
#   - a run with --max_restarts 1 (or a relaunch, for whole machines) resumes from it and finishes
#     with weights bitwise equal to an uninterrupted run.
#
#   faults.sh ACCEL WORKER SCENARIO [--repeat N]
#   scenarios: kill segv throw hang stop nojoin master_rank0 master_machine netcut diskfull readonly all
# netcut needs network namespaces, diskfull/readonly need mount (root); where they are missing the
# scenario exits 77 (CTest: skipped) and says why.
set -uo pipefail
accel="$1"; worker="$2"; scenario="$3"; shift 3
repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    *) echo "faults.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ "$scenario" = all ]; then
  status=0
  for s in kill segv throw hang stop nojoin master_rank0 master_machine netcut diskfull readonly; do
    bash "${BASH_SOURCE[0]}" "$accel" "$worker" "$s" --repeat "$repeat"; rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || status=1
  done
  exit "$status"
fi

export OMP_NUM_THREADS=1
export ACCEL_TIMEOUT=${ACCEL_TIMEOUT:-10}   # rendezvous and collective timeout, seconds
grace=3
steps=40
save_every=5
fault_step=12
# Failure must be reported within the timeout, plus the launcher's grace period, plus start-up and
# the run itself (a few seconds on a loaded 2-core machine).
limit=$((ACCEL_TIMEOUT + grace + 30))
base="$(mktemp -d /tmp/accel_faults.XXXXXX)"
mounts=()
namespaces=()
cleanup() {
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done
  for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null; done
  pkill -KILL -f -- "$base/" 2>/dev/null
  rm -rf "$base"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL [$scenario #$iter]: $*"; failures=$((failures + 1)); }
skip() { echo "SKIP $scenario: $*"; exit 77; }

is_root() { [ "$(id -u)" = 0 ]; }
can_mount() { is_root && command -v mount >/dev/null && mount -t tmpfs -o size=1k tmpfs "$base/.probe" 2>/dev/null &&
              umount "$base/.probe"; }
can_netns() { is_root && command -v ip >/dev/null && ip netns add "accel_probe_$$" 2>/dev/null &&
              ip netns del "accel_probe_$$"; }
mkdir -p "$base/.probe"

# launch OUT LOG [launch flags...] -- [worker flags...]: one machine, 2 processes.
launch() {
  local out="$1" log="$2"; shift 2
  local lflags=() wflags=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do lflags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  wflags=("$@")
  mkdir -p "$out"
  "$accel" launch --num_processes 2 --cpu --main_process_port 0 --grace_period "$grace" "${lflags[@]}" \
    "$worker" --out "$out" --steps "$steps" --save_every "$save_every" "${wflags[@]}" > "$log" 2>&1
}

# The reference: the same run with no fault (once per invocation).
ref="$base/ref"
launch "$ref" "$base/ref.log" -- || { cat "$base/ref.log"; echo "the fault-free reference run failed"; exit 1; }

leftovers() {  # processes of run $1 still alive after up to 5 s
  local i
  for i in $(seq 50); do pgrep -f -- "$1" >/dev/null || return 0; sleep 0.1; done
  echo "left over:"; pgrep -af -- "$1"
  return 1
}

# check_failure OUT LOG RC ELAPSED REGEX [MIN_STEP]
check_failure() {
  local out="$1" log="$2" rc="$3" elapsed="$4" regex="$5" min_step="${6:-5}"
  [ "$rc" -ne 0 ] || fail "launcher exited 0"
  [ "$elapsed" -le "$limit" ] || fail "took ${elapsed} s (limit ${limit} s)"
  grep -Eq -- "$regex" "$log" || fail "no message matching /$regex/"
  leftovers "$out" || fail "processes left behind"
  local check
  check="$("$worker" --check "$out" 2>&1)" || fail "the last checkpoint does not load: $check"
  local step
  step="$(sed -n 's/.*loads: step \([0-9]*\).*/\1/p' <<<"$check")"
  [ -n "$step" ] && [ "$step" -ge "$min_step" ] || fail "checkpoint step '$step' < $min_step: $check"
  echo "  failed as expected in ${elapsed} s (exit $rc); $(grep -Eo -m1 -- "$regex" "$log"); checkpoint at step $step loads"
  echo "  reported cause: $(grep -E -m1 '^  \| .*(error|terminate|what\(\))' "$log" | cut -c1-220)"
}

# check_finished OUT LOG RC: the resumed run ended and matches the reference bitwise.
check_finished() {
  local out="$1" log="$2" rc="$3"
  [ "$rc" -eq 0 ] || fail "resumed run exited $rc"
  grep -q "resumed from checkpoint_" "$log" || fail "the run did not resume from a checkpoint"
  grep -q "finished $steps steps" "$log" || fail "the run did not finish $steps steps"
  cmp -s "$out/final.safetensors" "$ref/final.safetensors" || fail "final weights differ from the uninterrupted run"
  echo "  resumed ($(grep -o -m1 'resumed from checkpoint_[0-9]* at step [0-9]*' "$log")) and finished; weights == uninterrupted run"
}

dump() { echo "---- $1 ----"; tail -60 "$1"; }

# A fault inside a single-machine run: failure, then the same with --max_restarts 1.
single() {
  local fault="$1" rank="$2" regex="$3" also="${4:-}"
  local out="$base/$scenario.$iter" t0 rc
  t0=$(date +%s)
  launch "$out" "$out.log" -- --fault "$fault" --fault_rank "$rank" --fault_step "$fault_step"; rc=$?
  local before=$failures
  check_failure "$out" "$out.log" "$rc" $(($(date +%s) - t0)) "$regex" 10
  if [ -n "$also" ]; then
    grep -Eq -- "$also" "$out.log" || fail "no message matching /$also/"
    echo "  and: $(grep -Eo -m1 -- "$also" "$out.log")"
  fi
  local out2="$base/$scenario.$iter.restart"
  launch "$out2" "$out2.log" --max_restarts 1 -- --fault "$fault" --fault_rank "$rank" --fault_step "$fault_step"
  rc=$?
  check_finished "$out2" "$out2.log" "$rc"
  grep -q "restarting all 2 local worker(s)" "$out2.log" || fail "no restart reported"
  [ "$failures" -eq "$before" ] || { dump "$out.log"; dump "$out2.log"; }
}

# Two machines with one process each: "$1" = ip prefix command for machine 0/1 (may be empty).
two_machines() {  # two_machines OUT MASTER_IP PORT NS0 NS1 [worker flags...]
  local out="$1" ip="$2" port="$3" ns0="$4" ns1="$5"; shift 5
  mkdir -p "$out"
  local m
  for m in 0 1; do
    local ns; ns=$([ "$m" = 0 ] && echo "$ns0" || echo "$ns1")
    local pre=()
    [ -n "$ns" ] && pre=(ip netns exec "$ns")
    "${pre[@]}" "$accel" launch --num_machines 2 --machine_rank "$m" --num_processes 2 --cpu \
      --main_process_ip "$ip" --main_process_port "$port" --grace_period "$grace" \
      "$worker" --out "$out" --steps "$steps" --save_every "$save_every" "$@" > "$out.m$m.log" 2>&1 &
    eval "pid$m=$!"
  done
}

wait_step() {  # wait_step OUT STEP: until rank 0 reached STEP (at most 60 s)
  local i
  for i in $(seq 600); do
    local s; s="$(cat "$1/progress.rank0" 2>/dev/null || echo 0)"
    [ "${s:-0}" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("",0));print(s.getsockname()[1])' 2>/dev/null ||
              echo $((20000 + RANDOM % 20000)); }

run_once() {
  case "$scenario" in
    kill) single kill 1 'rank 1 \(local rank 1, pid [0-9]+\) failed: killed by signal 9 \(SIGKILL\)' ;;
    # Under AddressSanitizer (scripts/sanitize.sh) ASan reports the SEGV itself and exits 1.
    segv) single segv 1 'rank 1 \(local rank 1, pid [0-9]+\) failed: killed by signal 11 \(SIGSEGV\)|AddressSanitizer: SEGV on unknown address' ;;
    throw) single throw 1 'injected failure on rank 1 at step 12' ;;
    hang) single hang 1 "\\[rank 0\\] collective '[a-z_]+' \\(#[0-9]+\\) timed out after 10 s" \
            'rank 1 has not reached collective #[0-9]+: it is alive' ;;
    stop) single stop 1 "\\[rank 0\\] collective '[a-z_]+' \\(#[0-9]+\\) timed out after 10 s" \
            'rank 1 is silent: its last heartbeat was [0-9.]+ s ago' ;;
    nojoin)
      local out="$base/$scenario.$iter" t0 rc
      t0=$(date +%s)
      launch "$out" "$out.log" -- --fault nojoin --fault_rank 1; rc=$?
      [ "$rc" -ne 0 ] || fail "launcher exited 0"
      [ $(($(date +%s) - t0)) -le "$limit" ] || fail "took too long"
      grep -Eq 'rank\(s\) 1 did not join within' "$out.log" || fail "the missing rank is not named"
      leftovers "$out" || fail "processes left behind"
      echo "  failed as expected in $(($(date +%s) - t0)) s: $(grep -Eo -m1 'rank\(s\) 1 did not join within [0-9.]+ s' "$out.log")"
      local out2="$base/$scenario.$iter.restart"
      launch "$out2" "$out2.log" --max_restarts 1 -- --fault nojoin --fault_rank 1; rc=$?
      [ "$rc" -eq 0 ] && grep -q "finished $steps steps" "$out2.log" || fail "the restarted run did not finish"
      cmp -s "$out2/final.safetensors" "$ref/final.safetensors" || fail "final weights differ"
      [ "$failures" -eq 0 ] && echo "  restarted and finished; weights == uninterrupted run" || { dump "$out.log"; dump "$out2.log"; }
      ;;
    master_rank0) single kill 0 'rank 0 \(local rank 0, pid [0-9]+\) failed: killed by signal 9 \(SIGKILL\)' ;;
    master_machine)
      # Machine 0 (its launcher and rank 0, which hosts the rendezvous store) is killed mid-training.
      local out="$base/$scenario.$iter" port t0 rc1
      port=$(free_port)
      two_machines "$out" 127.0.0.1 "$port" "" "" --step_sleep_ms 50
      wait_step "$out" "$fault_step" || fail "the run never reached step $fault_step"
      t0=$(date +%s)
      kill -KILL "$pid0"
      { wait "$pid0"; } 2>/dev/null
      wait "$pid1"; rc1=$?
      check_failure "$out" "$out.m1.log" "$rc1" $(($(date +%s) - t0)) 'rank 1 \(local rank 0, pid [0-9]+\) failed: exit code 1' 10
      # The job scheduler relaunches both machines: the run resumes from the checkpoint.
      two_machines "$out" 127.0.0.1 "$(free_port)" "" ""
      wait "$pid0"; local r0=$?; wait "$pid1"; local r1=$?
      [ "$r0" -eq 0 ] && [ "$r1" -eq 0 ] || fail "relaunch exited $r0/$r1"
      grep -q "resumed from checkpoint_" "$out.m0.log" && grep -q "finished $steps steps" "$out.m0.log" ||
        fail "the relaunched run did not resume and finish"
      cmp -s "$out/final.safetensors" "$ref/final.safetensors" || fail "final weights differ"
      [ "$failures" -eq 0 ] && echo "  relaunched: $(grep -o -m1 'resumed from checkpoint_[0-9]* at step [0-9]*' "$out.m0.log"), finished; weights == uninterrupted run" ||
        { dump "$out.m1.log"; dump "$out.m0.log"; }
      ;;
    netcut)
      can_netns || skip "network namespaces need root and iproute2"
      local ns0="accel_f0_$$_$iter" ns1="accel_f1_$$_$iter" v0="vf0_$$" v1="vf1_$$"
      ip netns add "$ns0" && ip netns add "$ns1" && namespaces+=("$ns0" "$ns1")
      ip link add "$v0" type veth peer name "$v1"
      ip link set "$v0" netns "$ns0" && ip link set "$v1" netns "$ns1"
      ip -n "$ns0" addr add 10.231.8.1/24 dev "$v0" && ip -n "$ns1" addr add 10.231.8.2/24 dev "$v1"
      ip -n "$ns0" link set lo up; ip -n "$ns1" link set lo up
      ip -n "$ns0" link set "$v0" up && ip -n "$ns1" link set "$v1" up
      local out="$base/$scenario.$iter" t0 rc0 rc1 port=$((20000 + RANDOM % 20000))
      two_machines "$out" 10.231.8.1 "$port" "$ns0" "$ns1" --step_sleep_ms 50
      wait_step "$out" "$fault_step" || fail "the run never reached step $fault_step"
      t0=$(date +%s)
      ip -n "$ns1" link set "$v1" down   # machine 1 is cut off
      wait "$pid0"; rc0=$?; wait "$pid1"; rc1=$?
      local el=$(($(date +%s) - t0))
      check_failure "$out" "$out.m0.log" "$rc0" "$el" 'rank 0 \(local rank 0, pid [0-9]+\) failed: exit code 1' 10
      [ "$rc1" -ne 0 ] || fail "machine 1 exited 0"
      grep -Eq 'rank 1 \(local rank 0, pid [0-9]+\) failed: exit code 1' "$out.m1.log" || fail "machine 1 does not name rank 1"
      echo "  machine 1 also failed (exit $rc1): $(grep -Eo -m1 "collective '[a-z_]+' failed|timed out|Timed out" "$out.m1.log" | head -1)"
      ip -n "$ns1" link set "$v1" up
      two_machines "$out" 10.231.8.1 $((port + 1)) "$ns0" "$ns1"
      wait "$pid0"; local r0=$?; wait "$pid1"; local r1=$?
      [ "$r0" -eq 0 ] && [ "$r1" -eq 0 ] || fail "relaunch after reconnecting exited $r0/$r1"
      cmp -s "$out/final.safetensors" "$ref/final.safetensors" || fail "final weights differ"
      grep -q "resumed from checkpoint_" "$out.m0.log" || fail "the relaunch did not resume"
      [ "$failures" -eq 0 ] && echo "  reconnected and relaunched: resumed, finished; weights == uninterrupted run" ||
        { dump "$out.m0.log"; dump "$out.m1.log"; }
      ip netns del "$ns0"; ip netns del "$ns1"; namespaces=()
      ;;
    diskfull|readonly)
      can_mount || skip "mounting a small file system needs root"
      local out="$base/$scenario.$iter" t0 rc
      mkdir -p "$out/checkpoints"
      # diskfull: room for one checkpoint (~1 MB) but not two; readonly: made read-only after the first.
      local size=1600k
      [ "$scenario" = readonly ] && size=64m
      mount -t tmpfs -o "size=$size" tmpfs "$out/checkpoints" && mounts+=("$out/checkpoints")
      t0=$(date +%s)
      if [ "$scenario" = readonly ]; then
        launch "$out" "$out.log" -- --step_sleep_ms 100 &
        local lp=$!
        local i
        for i in $(seq 600); do [ -f "$out/checkpoints/checkpoint_0/accel_state.json" ] && break; sleep 0.05; done
        for i in $(seq 100); do mount -o remount,ro "$out/checkpoints" 2>/dev/null && break; sleep 0.02; done
        wait "$lp"; rc=$?
        local regex='Read-only file system'
      else
        launch "$out" "$out.log" --; rc=$?
        local regex='No space left on device'
      fi
      check_failure "$out" "$out.log" "$rc" $(($(date +%s) - t0)) "rank [01] \(local rank [01], pid [0-9]+\) failed: exit code 1" 5
      grep -q -- "$regex" "$out.log" || fail "the cause ($regex) is not reported"
      echo "  cause reported: $(grep -o -m1 -- "$regex" "$out.log")"
      # Space is freed / the disk is writable again: the relaunched run resumes and finishes.
      mount -o "remount,rw,size=64m" "$out/checkpoints"
      launch "$out" "$out.relaunch.log" --; rc=$?
      check_finished "$out" "$out.relaunch.log" "$rc"
      [ "$failures" -eq 0 ] || { dump "$out.log"; dump "$out.relaunch.log"; }
      umount "$out/checkpoints"; mounts=()
      ;;
    *) echo "faults.sh: unknown scenario $scenario" >&2; exit 2 ;;
  esac
}

echo "scenario $scenario: ACCEL_TIMEOUT=${ACCEL_TIMEOUT} s, grace ${grace} s, limit ${limit} s, $repeat time(s)"
for iter in $(seq "$repeat"); do
  echo "run $iter of $repeat"
  run_once
  rm -rf "${base:?}/$scenario.$iter"*
done
if [ "$failures" -eq 0 ]; then
  echo "$scenario: $repeat passed, 0 failed"
  exit 0
fi
echo "$scenario: $failures check(s) failed"
exit 1
