#!/usr/bin/env bash
# Fine-tune the default model on all 25,000 IMDb training reviews (2 processes, bf16) and evaluate on
# the test split, in pieces: a checkpoint every 40 steps under out/imdb-25k (atomic, newest 2 kept);
# run it again after an interruption and it resumes exactly from the latest one. The result line
# (RESULT accuracy=...) goes to out/imdb-25k/run.log. Needs the build (bash scripts/setup.sh).
#   bash scripts/imdb_full.sh [extra imdb_finetune options]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ACCEL_BUILD_DIR:-$root/build}"
dir="$root/out/imdb-25k"
mkdir -p "$dir"
resume=()
if compgen -G "$dir/checkpoints/checkpoint_*" > /dev/null; then resume=(--resume_from_checkpoint latest); fi
"$build/bin/accel" launch --num_processes 2 --mixed_precision "${ACCEL_MAIN_PRECISION:-bf16}" \
  "$build/bin/imdb_finetune" --max_train_samples 0 --checkpointing_steps 40 --checkpoints_total_limit 2 \
  --project_dir "$dir" --output_dir "$dir/model" "${resume[@]}" "$@" 2>&1 | tee -a "$dir/run.log"
