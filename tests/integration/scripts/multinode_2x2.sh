#!/usr/bin/env bash
# 2 machines x 2 processes through the real launcher. The machines are two network namespaces
# joined by a veth pair (10.231.7.1 and 10.231.7.2); where namespaces cannot be made (no root,
# no iproute2), both "machines" run on loopback instead and the script says so. Every one of the
# 4 ranks runs the DDP equivalence check (one step on 4 x B == one process on 4B), then HYBRID_SHARD
# (full sharding inside each machine, replicated across the two) against DDP and one process.
#   tests/integration/scripts/multinode_2x2.sh <accel binary> <accel_unit_tests binary>
set -uo pipefail
accel="$1"; worker="$2"
port=$((20000 + RANDOM % 20000))
args=(--gtest_filter=DISABLED_Worker.Equivalence --gtest_also_run_disabled_tests)
logs="$(mktemp -d)"
# The sharded worker runs each configuration with its own process group (one port each).
hybrid_configs="NO_SHARD:bert:1:0:fp32;HYBRID_SHARD:bert:1:0:fp32;NO_SHARD:mlp:2:1.0:fp32;HYBRID_SHARD:mlp:2:1.0:fp32;HYBRID_SHARD_ZERO2:bert:1:0:fp32"
hybrid_ports="$((port + 1)),$((port + 2)),$((port + 3)),$((port + 4)),$((port + 5))"
ns0="accel_m0_$$"; ns1="accel_m1_$$"
cleanup() { ip netns del "$ns0" 2>/dev/null; ip netns del "$ns1" 2>/dev/null; rm -rf "$logs"; }
trap cleanup EXIT
if command -v ip >/dev/null && ip netns add "$ns0" 2>/dev/null && ip netns add "$ns1" 2>/dev/null &&
   ip link add "v0_$$" type veth peer name "v1_$$" 2>/dev/null; then
  ip link set "v0_$$" netns "$ns0" && ip link set "v1_$$" netns "$ns1"
  ip -n "$ns0" addr add 10.231.7.1/24 dev "v0_$$" && ip -n "$ns1" addr add 10.231.7.2/24 dev "v1_$$"
  for n in "$ns0" "$ns1"; do ip -n "$n" link set lo up; done
  ip -n "$ns0" link set "v0_$$" up && ip -n "$ns1" link set "v1_$$" up
  master=10.231.7.1
  run() { ip netns exec "$([ "$1" = 0 ] && echo "$ns0" || echo "$ns1")" "$accel" launch --num_machines 2 \
            --machine_rank "$1" --main_process_ip "$master" --main_process_port "$port" --num_processes 4 \
            "$worker" "${args[@]}"; }
  echo "machines: network namespaces $ns0 (10.231.7.1) and $ns1 (10.231.7.2)"
else
  master=127.0.0.1
  run() { "$accel" launch --num_machines 2 --machine_rank "$1" --main_process_ip "$master" \
            --main_process_port "$port" --num_processes 4 "$worker" "${args[@]}"; }
  echo "machines: loopback (network namespaces unavailable here)"
fi
export ACCEL_TIMEOUT=60 OMP_NUM_THREADS=1
total_failed=0
pair() {
  local name="$1"
  run 0 > "$logs/m0.log" 2>&1 & local p0=$!
  run 1 > "$logs/m1.log" 2>&1 & local p1=$!
  wait "$p0"; local r0=$?
  wait "$p1"; local r1=$?
  local passed; passed=$(cat "$logs/m0.log" "$logs/m1.log" | grep -c "\[  PASSED  \] 1 test")
  echo "$name: machine 0 exit $r0, machine 1 exit $r1, ranks passed: $passed of 4"
  if [ "$r0" -ne 0 ] || [ "$r1" -ne 0 ] || [ "$passed" -ne 4 ]; then
    echo "---- machine 0 ----"; tail -40 "$logs/m0.log"
    echo "---- machine 1 ----"; tail -40 "$logs/m1.log"
    total_failed=$((total_failed + 1))
  fi
}
pair "DDP equivalence"
args=(--gtest_filter=DISABLED_ShardWorker.Equivalence --gtest_also_run_disabled_tests)
export CONFIGS="$hybrid_configs" PORTS="$hybrid_ports"
pair "HYBRID_SHARD (shard inside each machine, replicate across)"
grep -h "HYBRID" "$logs/m0.log" | head -3
echo "$((2 - total_failed)) passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
