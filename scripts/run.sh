#!/usr/bin/env bash
# The main job: set-up (idempotent) and a build of what it needs (the `accel` command and the
# example; `bash scripts/test.sh` builds the rest), then fine-tune the default model
# (all-MiniLM-L6-v2) on 2,000 IMDb training reviews with accel on 2 processes and evaluate it on
# the 2,000 test reviews, in bf16 (on CPUs without native bf16 instructions accel computes the
# bf16 matmuls and convolutions in fp32, see include/accel/precision/cpu_compute.h); override with
# ACCEL_MAIN_PRECISION=no|bf16|fp16. Extra arguments go to the example
# (e.g. `bash scripts/run.sh --max_train_samples 0` trains on all 25,000 reviews).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
ACCEL_BUILD_TARGETS="accel_cli imdb_finetune" bash scripts/setup.sh
build="${ACCEL_BUILD_DIR:-$root/build}"
precision="${ACCEL_MAIN_PRECISION:-bf16}"
echo "[run] 2 processes, mixed precision: $precision"
exec "$build/bin/accel" launch --num_processes 2 --mixed_precision "$precision" \
  "$build/bin/imdb_finetune" --max_train_samples 2000 --output_dir "$root/out/imdb-minilm" "$@"
