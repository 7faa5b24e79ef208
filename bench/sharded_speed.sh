#!/usr/bin/env bash
# Throughput of sharded data parallel against DDP on CPU: MiniLM-sized BERT step
# (bench/ddp_step.cpp), 2 processes x 1 thread, the strategies run one after the other ROUNDS
# times; prints each strategy's median samples/s, the median of its per-round ratio to DDP, and
# the share of its communication hidden under computation (1 - exposed / communication alone).
#   bash bench/sharded_speed.sh [ROUNDS=3] [extra args for bench_ddp_step, e.g. --batch 8 --seq 128]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${ACCEL_BUILD_DIR:-$root/build}/bin"
rounds="${1:-3}"; shift || true
strategies=(NO_SHARD SHARD_OPTIMIZER SHARD_GRAD_OP FULL_SHARD)
results=()
for r in $(seq "$rounds"); do
  for s in "${strategies[@]}"; do
    out="$(OMP_NUM_THREADS=1 "$bin/accel" launch -q --num_processes 2 "$bin/bench_ddp_step" --sharding "$s" "$@" |
           grep -o '{.*}' | head -1)"
    results+=("$r $s $out")
  done
done
printf '%s\n' "${results[@]}" > /tmp/accel_sharded_speed.$$
python3 - /tmp/accel_sharded_speed.$$ <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r, s, js = line.rstrip("\n").split(" ", 2)
    rows.setdefault(s, {})[int(r)] = json.loads(js)
ddp = rows["NO_SHARD"]
print("%-18s %10s %7s %12s   %s" % ("strategy", "samples/s", "x DDP", "comm hidden", "per-round ratios"))
for s, per in rows.items():
    thr = statistics.median(v["samples_per_s"] for v in per.values())
    ratios = [per[k]["samples_per_s"] / ddp[k]["samples_per_s"] for k in per if k in ddp]
    hidden = [1 - v["comm_exposed_s"] / v["comm_total_s"] for v in per.values() if v["comm_total_s"] > 0]
    h = "%.0f%%" % (100 * statistics.median(hidden)) if hidden else "-"
    print("%-18s %10.2f %7.3f %12s   %s" % (s, thr, statistics.median(ratios), h, ", ".join("%.3f" % x for x in ratios)))
PY
rm -f /tmp/accel_sharded_speed.$$
