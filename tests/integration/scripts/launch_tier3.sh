#!/usr/bin/env bash
# Tier 3: accel's own multi-process checks started by the real `accel launch` (not by the test
# harness): DDP equivalence on 2 and 4 ranks, the no_sync shadow model, gather_for_metrics, and
# `accel test` with a generated config file, and Accelerate-written config files launching cleanly.
#   tests/integration/scripts/launch_tier3.sh <accel binary> <accel_unit_tests binary>
set -uo pipefail
accel="$1"; worker="$2"
export OMP_NUM_THREADS=1 ACCEL_TIMEOUT=60
fail=0; pass=0
check() {
  local name="$1"; shift
  if out=$("$@" 2>&1); then pass=$((pass + 1)); echo "PASS $name";
  else fail=$((fail + 1)); echo "FAIL $name"; echo "$out" | tail -30; fi
}
w() { echo --gtest_filter="DISABLED_Worker.$1" --gtest_also_run_disabled_tests; }
check "equivalence, 2 ranks" "$accel" launch --num_processes 2 "$worker" $(w Equivalence)
check "equivalence, 4 ranks" "$accel" launch --num_processes 4 "$worker" $(w Equivalence)
check "no_sync shadow model" "$accel" launch --num_processes 2 "$worker" $(w NoSyncShadow)
check "gather_for_metrics 2001 on 3 ranks" "$accel" launch --num_processes 3 "$worker" $(w GatherForMetricsCountsEachExampleOnce)
cfg="$(mktemp -d)/config.yaml"
cat > "$cfg" <<'YAML'
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_CPU
mixed_precision: 'no'
machine_rank: 0
num_machines: 1
num_processes: 2
use_cpu: true
YAML
check "accel test (2 processes from a config file)" "$accel" test --config_file "$cfg"
check "accel test bf16 override" "$accel" launch --config_file "$cfg" --main_process_port 0 --mixed_precision bf16 \
  "$(dirname "$accel")/accel-check"
rm -rf "$(dirname "$cfg")"
# Config files written by the real Accelerate 1.15 (tests/fixtures/configs) load and launch.
fixtures="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../fixtures/configs" && pwd)"
for f in single_cpu.yaml multi_cpu.yaml multi_cpu.json default_cpu.yaml; do
  check "accel test --config_file $f (written by Accelerate)" "$accel" test --config_file "$fixtures/$f"
done
# Every config file as Accelerate writes it (plain, FSDP 1 and 2, DeepSpeed ZeRO 1-3, MULTI_CPU with
# ipex_config and mpirun_config) launches with no warning at the default log level. Run on 2 CPU
# processes whatever the file's hardware, with a program that only prints.
no_warning() {
  local out
  out=$("$accel" launch --config_file "$1" --num_processes 2 --num_machines 1 --machine_rank 0 --cpu \
        /bin/sh -c 'echo started' 2>&1) || { echo "$out"; return 1; }
  if echo "$out" | grep -qi "warning"; then echo "$out"; return 1; fi
  [ "$(echo "$out" | grep -c started)" -eq 2 ] || { echo "$out"; return 1; }
}
for f in single_cpu.yaml multi_cpu.yaml multi_cpu.json multi_gpu.yaml multi_node.yaml default_cpu.yaml \
         multi_cpu_ipex_mpirun.yaml multi_cpu_mpirun.yaml fsdp1.yaml fsdp2.yaml fsdp2_offload.yaml fsdp2_cpu.yaml \
         deepspeed_zero1.yaml deepspeed_zero2.yaml deepspeed_zero3.yaml; do
  check "accel launch --config_file $f: no warning" no_warning "$fixtures/$f"
done
# As `accel test --config_file fsdp2_cpu.yaml`, on a free port (the file's default, 29500, may be
# taken by a test running beside this one).
check "accel-check with fsdp2_cpu.yaml (FSDP on 2 CPU processes)" "$accel" launch --config_file "$fixtures/fsdp2_cpu.yaml" \
  --main_process_port 0 "$(dirname "$accel")/accel-check"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
