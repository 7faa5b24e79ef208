#!/usr/bin/env bash
# Peak tensor bytes per process of a bert-large training step: FULL_SHARD on 4 processes against
# DDP (on 2 processes: a DDP process holds the same whatever the process count, and 4 DDP copies of
# bert-large do not fit a 24 GiB machine). Prints both peaks and their ratio (goal <= 0.35).
#   bash bench/sharded_memory.sh [extra args for bench_sharded_memory, e.g. --seq 64 --batch 2]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${ACCEL_BUILD_DIR:-$root/build}/bin"
run() { OMP_NUM_THREADS=1 "$bin/accel" launch -q --num_processes "$1" "$bin/bench_sharded_memory" --sharding "$2" "${@:3}" |
        grep -o '{.*}' | head -1; }
full=$(run 4 FULL_SHARD "$@")
ddp=$(run 2 NO_SHARD "$@")
python3 - "$full" "$ddp" <<'PY'
import json, sys
f, d = json.loads(sys.argv[1]), json.loads(sys.argv[2])
g = lambda b: b / 2**30
print("FULL_SHARD on %d processes: steady peak %.2f GiB per process, %.2f GiB held after a backward" % (f["processes"], g(f["steady_peak_bytes"]), g(f["bytes_after_backward"])))
print("DDP        on %d processes: steady peak %.2f GiB per process, %.2f GiB held after a backward" % (d["processes"], g(d["steady_peak_bytes"]), g(d["bytes_after_backward"])))
print("ratio FULL_SHARD / DDP (steady peak): %.3f" % (f["steady_peak_bytes"] / d["steady_peak_bytes"]))
PY
