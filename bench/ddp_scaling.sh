#!/usr/bin/env bash
# Scaling efficiency of data-parallel training on CPU: MiniLM-sized BERT step, 1 process x 1
# thread vs 2 processes x 1 thread, same per-process batch, alternating, ROUNDS times; prints the
# median throughputs, efficiency = (2-process throughput / 1-process throughput) / 2, and the
# share of the all-reduce hidden under backward.
#   bash bench/ddp_scaling.sh [ROUNDS=3] [extra args for bench_ddp_step]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${ACCEL_BUILD_DIR:-$root/build}/bin"
rounds="${1:-3}"; shift || true
one=(); two=()
for r in $(seq "$rounds"); do
  one+=("$(OMP_NUM_THREADS=1 "$bin/accel" launch --num_processes 1 "$bin/bench_ddp_step" "$@" | grep '^{')")
  two+=("$(OMP_NUM_THREADS=1 "$bin/accel" launch -q --num_processes 2 "$bin/bench_ddp_step" "$@" | grep -o '{.*}')")
done
python3 - "${one[@]}" "---" "${two[@]}" <<'PY'
import json, statistics, sys
args = sys.argv[1:]; k = args.index("---")
one = [json.loads(a) for a in args[:k]]; two = [json.loads(a) for a in args[k+1:]]
t1 = statistics.median(r["samples_per_s"] for r in one)
t2 = statistics.median(r["samples_per_s"] for r in two)
ratios = [b["samples_per_s"] / a["samples_per_s"] / 2 for a, b in zip(one, two)]
exp = statistics.median(r["comm_exposed_s"] for r in two)
tot = statistics.median(r["comm_total_s"] for r in two)
print(f"1 process : {t1:.2f} samples/s (median of {len(one)})")
print(f"2 processes: {t2:.2f} samples/s")
print(f"scaling efficiency: median of per-round ratios {statistics.median(ratios):.3f} "
      f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
print(f"all-reduce: {tot*1000:.1f} ms from first bucket launch to done, {exp*1000:.1f} ms exposed after backward "
      f"-> {100*(1-exp/tot) if tot > 0 else 0:.0f}% hidden under backward")
PY
