#!/usr/bin/env bash
# The main job: set-up (idempotent), build, then train with accel.
# For now: the basic example with accel on 2 processes in bf16 next to the plain LibTorch loop.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
build="${ACCEL_BUILD_DIR:-$root/build}"
"$build/bin/basic" --mode plain --epochs 3
"$build/bin/accel" launch --num_processes 2 --mixed_precision bf16 "$build/bin/basic" --mode accel --epochs 3
