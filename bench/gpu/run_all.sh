#!/usr/bin/env bash
# Everything a lent GPU machine should measure, in one command and < 8 minutes (16 cores, one GPU,
# no network): build accel against the machine's own torch, NCCL / Gloo-with-CUDA checks, the
# precision benchmark (bert-base, batch 16 x seq 512, fp32/bf16/fp16, GEMM peak, MFU), the same
# work in transformers + accelerate on the same GPU, A/B runs of each GPU speed option, the
# IMDb-shaped tokens/s (all-MiniLM-L6-v2, real review lengths, dynamic padding), the unit tests;
# every figure as JSON in OUT, and OUT/summary.json with the acceptance ratios.
#
#   bash bench/gpu/run_all.sh OUT                 # on the GPU machine
#   DRY_RUN=1 bash bench/gpu/run_all.sh OUT       # here: every phase on the CPU, tiny sizes
#
# Each phase has its own time limit inside one overall budget; a phase that fails, times out or
# does not fit is reported (printed and in summary.json) and the next one runs.
# Env: PYTHON    python whose torch is the machine's (default python3; DRY_RUN: .venv/bin/python)
#      CARRY     folder from bench/gpu/prepare_carry.sh (default .gpu-carry): debs/, wheels/,
#                imdb_lengths.txt
#      ACCEL_BUILD_DIR  (default build-gpu; DRY_RUN: build, which must be built already)
#      BUDGET_S  overall budget in seconds (default 470), JOBS (default nproc)
#      PACK=1    leave only summary.json, summary.txt, run_all.log and details.tar.gz in OUT (a
#                machine that returns few files); the details are the JSON files and logs
#      HF_PYTHON python for transformers + accelerate (default: PYTHON, with the carried wheels
#                added when it cannot import them; DRY_RUN: .venv-ref/bin/python)
set -uo pipefail
self="$(realpath "${BASH_SOURCE[0]}")"
root="$(cd "$(dirname "$self")/../.." && pwd)"
cd "$root"
# Internal: `run_all.sh --phase NAME OUT` runs one phase's function (so that `timeout` can stop
# the phase with everything it started: its process group).
only=""
if [[ "${1:-}" == "--phase" ]]; then only="$2"; shift 2; fi
[[ $# -ge 1 ]] || { sed -n '2,22p' "$self"; exit 2; }
out="$(realpath -m "$1")"
mkdir -p "$out"
dry="${DRY_RUN:-0}"
carry="$(realpath -m "${CARRY:-$root/.gpu-carry}")"
jobs="${JOBS:-$(nproc)}"
budget="${BUDGET_S:-470}"
export RUN_ALL_T0="${RUN_ALL_T0:-$(date +%s)}"
t_start=$RUN_ALL_T0
if [[ "$dry" == 1 ]]; then
  py="${PYTHON:-$root/.venv/bin/python}"
  build="${ACCEL_BUILD_DIR:-$root/build}"
else
  py="${PYTHON:-python3}"
  build="${ACCEL_BUILD_DIR:-$root/build-gpu}"
fi
accel="$build/bin/accel"
phases="$out/phases.tsv"

say() { printf '[run_all %3ds] %s\n' "$(($(date +%s) - t_start))" "$*"; }
left() { echo $((budget - ($(date +%s) - t_start))); }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$phases"; }  # phase status seconds note
skip() { say "SKIPPED $1: $2"; record "$1" skipped 0 "$2"; }

# phase NAME LIMIT_S MIN_S COMMAND...: runs COMMAND (a shell function or program) with a time limit
# of min(LIMIT_S, time left - 20 s reserved for the summary); skips it when less than MIN_S is left.
phase() {
  local name="$1" limit="$2" min="$3"; shift 3
  local avail=$(($(left) - 20))
  local t=$((limit < avail ? limit : avail))
  if ((t < min)); then skip "$name" "out of time ($(left) s of the ${budget} s budget left, needs ${min} s)"; return 1; fi
  say "phase $name (limit ${t} s)"
  local t0=$(date +%s) rc=0
  timeout -k 5 "$t" bash "$self" --phase "$1" "$out" || rc=$?
  local dt=$(($(date +%s) - t0))
  if ((rc == 0)); then
    record "$name" ok "$dt" ""
  elif ((rc == 124 || rc == 137)); then
    say "TIMED OUT $name after ${dt} s"; record "$name" timeout "$dt" "killed after ${t} s"
  else
    say "FAILED $name (exit $rc; see its log in $out)"; record "$name" failed "$dt" "exit $rc"
  fi
  return $rc
}

# ---- sizes: the GPU workload, or tiny ones for the dry run ------------------------------------------
if [[ "$dry" == 1 ]]; then
  base=(--config bert-tiny --seq_len 32 --batch_size 2 --steps 3 --warmup 1)
  gemm=(--gemm_sizes 64,128 --gemm_reps 2)
  imdb=(--config bert-tiny --seq_len 64 --batch_size 4 --steps 3 --warmup 1)
  hf_base=(--config bert-tiny --seq_len 32 --batch_size 2 --steps 3 --warmup 1 --device cpu --num_threads 2)
  hf_imdb=(--config bert-tiny --seq_len 64 --batch_size 4 --steps 3 --warmup 1 --device cpu --num_threads 2)
  dev=(--cpu --num_threads 2)
  ctest_filter=(-R "FusedOps|Varlen|BertFastPath|PrecisionBench|CudaGraph")
  hf_py="${HF_PYTHON:-$root/.venv-ref/bin/python}"
else
  base=(--config bert-base-uncased --seq_len 512 --batch_size 16 --steps 20 --warmup 3)
  gemm=(--gemm_sizes 2048,4096,8192 --gemm_reps 10)
  imdb=(--config all-MiniLM-L6-v2 --seq_len 256 --batch_size 32 --steps 40 --warmup 3)
  hf_base=(--config bert-base-uncased --seq_len 512 --batch_size 16 --steps 20 --warmup 3 --device cuda)
  hf_imdb=(--config all-MiniLM-L6-v2 --seq_len 256 --batch_size 32 --steps 40 --warmup 3 --device cuda)
  dev=()
  ctest_filter=()
  hf_py="${HF_PYTHON:-$py}"
fi
lengths="$carry/imdb_lengths.txt"
if [[ ! -s "$lengths" && "$dry" == 1 ]]; then
  lengths="$out/lengths_dry.txt"; printf '%s\n' 12 40 64 7 33 64 21 50 >"$lengths"
fi

# ---- 0. the machine ----------------------------------------------------------------------------------
probe() {
  "$py" - "$dry" >"$out/env.json" <<'PY'
import json, os, platform, subprocess, sys
import torch
dry = sys.argv[1] == "1"
cuda = torch.cuda.is_available()
if not dry and not cuda:
    sys.exit("this torch sees no CUDA GPU (torch %s, CUDA %s)" % (torch.__version__, torch.version.cuda))
def out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as e:
        return "unavailable (%s)" % e
info = {"dry_run": dry, "torch": torch.__version__, "torch_cuda": torch.version.cuda, "python": platform.python_version(),
        "cpus": os.cpu_count(), "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
        "bf16": torch.cuda.is_bf16_supported() if cuda else None,
        "nvidia_smi": out(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm", "--format=csv,noheader"]),
        "nvcc": out(["nvcc", "--version"]).splitlines()[-1:] , "cmake": out(["cmake", "--version"]).splitlines()[:1]}
print(json.dumps(info, indent=2))
PY
  cat "$out/env.json"
}

# ---- 1. build against the machine's torch -------------------------------------------------------------
targets=(accel_cli accel_check bench_gpu_collectives accel_unit_tests accel_text_tests accel_checkpoint_tests
         accel_models_tests accel_launcher_tests accel_tracking_tests accel_bench_tests)
build_all() {
  if [[ "$dry" != 1 ]]; then
    local tp prefix
    tp="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')" || return 1
    prefix="$tp"
    if [[ -d "$carry/debs" ]] && ! [[ -f /usr/include/gloo/config.h && -f /usr/include/yaml-cpp/yaml.h && -d /usr/include/gtest ]]; then
      local deps; deps="$(bash "$root/bench/gpu/offline_deps.sh" unpack "$carry/debs" /tmp/accel-deps)" || return 1
      prefix="$tp;$deps"
      say "apt packages unpacked from $carry/debs into $deps"
    fi
    if [[ -z "${CUDAToolkit_ROOT:-}" && -d /usr/local/cuda ]]; then export CUDAToolkit_ROOT=/usr/local/cuda; fi
    local gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
      -DACCEL_PYTHON="$(command -v "$py")" -DACCEL_BUILD_EXAMPLES=OFF -DACCEL_INTEGRATION_TESTS=OFF \
      >"$out/configure.log" 2>&1 || { tail -n 30 "$out/configure.log"; return 1; }
    grep -E "CUDA:|Gloo:|Torch:" "$out/configure.log"
    grep -q "CUDA: yes" "$out/configure.log" || { say "CMake did not find a CUDA torch (see configure.log)"; return 1; }
  fi
  if ! cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$out/build.log" 2>&1; then
    grep -E "error|Error" "$out/build.log" | head -n 40; return 1
  fi
  local warnings; warnings=$(grep -c -i "warning" "$out/build.log" || true)
  say "built; lines mentioning a warning: $warnings"
}

# ---- 2. collectives: NCCL world size 1, Gloo with CUDA tensors across 2 processes ----------------------
collectives() {
  local rc=0 b1=nccl b2=gloo cpu=()
  if [[ "$dry" == 1 ]]; then b1=gloo; cpu=(--cpu); fi
  "$accel" launch -q --num_processes 1 --main_process_port 0 "$build/bin/bench_gpu_collectives" --backend "$b1" \
    "${cpu[@]}" --json "$out/collectives_${b1}_ws1.json" >"$out/collectives_ws1.log" 2>&1 || rc=1
  cat "$out/collectives_ws1.log"
  "$accel" launch -q --num_processes 2 --main_process_port 0 "$build/bin/bench_gpu_collectives" --backend "$b2" \
    "${cpu[@]}" --json "$out/collectives_${b2}_ws2.json" >"$out/collectives_ws2.log" 2>&1 || rc=1
  cat "$out/collectives_ws2.log"
  return $rc
}

# ---- 3. the precision benchmark ---------------------------------------------------------------------
precision() {
  "$accel" bench precision "${base[@]}" "${gemm[@]}" "${dev[@]}" --precisions no,bf16,fp16 --no_progress \
    --json "$out/precision.json" 2>&1 | tee "$out/precision.log"
}

# ---- 4. transformers + accelerate on the same device ---------------------------------------------------
hf_env_ok=0
hf_setup() {
  if "$hf_py" -c 'import transformers, accelerate' 2>/dev/null; then hf_env_ok=1; return 0; fi
  shopt -s nullglob; local wheels=("$carry"/wheels/*.whl)
  ((${#wheels[@]})) || { say "$hf_py cannot import transformers/accelerate and $carry/wheels has no wheels"; return 1; }
  say "installing the carried wheels into /tmp/hf-site (the machine's torch stays)"
  "$hf_py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/hf-site "${wheels[@]}" || return 1
  export PYTHONPATH="/tmp/hf-site${PYTHONPATH:+:$PYTHONPATH}"
  "$hf_py" -c 'import transformers, accelerate' && hf_env_ok=1
}
hf_run() {  # hf_run NAME ARGS...
  local name="$1"; shift
  PYTHONUNBUFFERED=1 "$hf_py" "$root/bench/compare_hf/hf_precision_step.py" "$@" --json-out "$out/$name.json" \
    >"$out/$name.log" 2>&1 || { tail -n 20 "$out/$name.log"; return 1; }
  "$hf_py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], "samples/s %.2f, step %.1f ms, peak %s" % (r["samples_per_s"], r["step_time_median_s"]*1e3, r.get("cuda_peak_allocated_bytes") or r.get("peak_rss_bytes")))' "$out/$name.json" "$name"
}
hf_all() { hf_run hf_bf16 "${hf_base[@]}" --precision bf16 && hf_run hf_fp32 "${hf_base[@]}" --precision no; }

# ---- 5. A/B of the GPU speed options (bf16) -----------------------------------------------------------
ab_variants=(
  "baseline:"
  "no_attention_mask:--no_attention_mask"
  "unpadded_attention:--unpadded_attention"
  "fused_bias_gelu:--fused_bias_gelu"
  "fused_layer_norm:--fused_layer_norm"
  "all_fused:--unpadded_attention --fused_bias_gelu --fused_layer_norm"
  "cuda_graph:--cuda_graph"
  "all_fused_cuda_graph:--unpadded_attention --fused_bias_gelu --fused_layer_norm --cuda_graph"
)
ab() {
  local rc=0 v name flags
  for v in "${ab_variants[@]}"; do
    name="${v%%:*}"; flags="${v#*:}"
    if (($(left) < 40)); then record "ab_$name" skipped 0 "out of time"; say "SKIPPED ab_$name: out of time"; continue; fi
    if [[ "$dry" == 1 && "$flags" == *--cuda_graph* ]]; then
      record "ab_$name" skipped 0 "dry run: CUDA graphs need a CUDA device"; say "SKIPPED ab_$name: dry run (CPU)"; continue
    fi
    # shellcheck disable=SC2086
    if "$accel" bench precision "${base[@]}" "${dev[@]}" --precisions bf16 --no_gemm --in_process --no_progress \
         $flags --json "$out/ab_$name.json" >"$out/ab_$name.log" 2>&1; then
      grep -E "^bf16 " "$out/ab_$name.log" | sed "s/^/  $name: /"
    else
      rc=1; say "ab_$name failed:"; tail -n 5 "$out/ab_$name.log"
    fi
    grep -h "^note:\|BertConfig\." "$out/ab_$name.log" | sort -u | sed 's/^/    /' | head -n 4
  done
  return $rc
}

# ---- 6. IMDb-shaped tokens/s: MiniLM, real review lengths, dynamic padding --------------------------------
imdb_phase() {
  [[ -s "$lengths" ]] || { say "no $lengths (run bench/gpu/prepare_carry.sh)"; return 1; }
  local rc=0 common=("${imdb[@]}" "${dev[@]}" --data lengths --lengths_file "$lengths" --precisions bf16 --no_gemm
                     --in_process --no_progress)
  "$accel" bench precision "${common[@]}" --json "$out/imdb_accel.json" >"$out/imdb_accel.log" 2>&1 || rc=1
  "$accel" bench precision "${common[@]}" --unpadded_attention --fused_bias_gelu --fused_layer_norm \
    --json "$out/imdb_accel_fast.json" >"$out/imdb_accel_fast.log" 2>&1 || rc=1
  grep -h -E "^bf16 " "$out/imdb_accel.log" "$out/imdb_accel_fast.log"
  if ((hf_env_ok)); then
    hf_run imdb_hf "${hf_imdb[@]}" --precision bf16 --data lengths --lengths_file "$lengths" || rc=1
  fi
  return $rc
}

# ---- 7. unit tests -------------------------------------------------------------------------------------
unit_tests() {
  ctest --test-dir "$build" -L unit "${ctest_filter[@]}" -j"$jobs" --timeout 120 --output-on-failure \
    >"$out/ctest.log" 2>&1
  local rc=$?
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run|Timeout" "$out/ctest.log" | head -n 40
  return $rc
}

# ---- the run ----------------------------------------------------------------------------------------
if [[ -n "$only" ]]; then
  hf_env_ok="${HF_ENV_OK:-0}"
  "$only"
  exit $?
fi
: >"$phases"
exec > >(tee "$out/run_all.log") 2>&1
say "run_all: $( [[ "$dry" == 1 ]] && echo 'DRY RUN on the CPU, tiny sizes' || echo 'GPU run' ), budget ${budget} s, out $out"
phase probe 30 5 probe || say "no usable torch: the later phases will fail"
phase build 240 60 build_all || say "without a build only the transformers side can run"
have_build=0; [[ -x "$accel" && -x "$build/bin/bench_gpu_collectives" ]] && have_build=1
if ((have_build)); then phase collectives 60 15 collectives; else skip collectives "no build"; fi
[[ "$dry" == 1 ]] && record collectives_nccl skipped 0 "dry run: a CPU torch has no NCCL (Gloo on CPU tensors instead)"
if ((have_build)); then phase precision 100 30 precision; else skip precision "no build"; fi
hf_setup || true
export HF_ENV_OK=$hf_env_ok
if ((hf_env_ok)); then phase hf 90 25 hf_all; else skip hf "transformers + accelerate not importable and no usable wheels"; fi
if ((have_build)); then phase unit_tests 150 30 unit_tests; else skip unit_tests "no build"; fi
if ((have_build)); then phase ab 120 40 ab; else skip ab "no build"; fi
if ((have_build)); then phase imdb 80 25 imdb_phase; else skip imdb "no build"; fi

# ---- 8. summary ---------------------------------------------------------------------------------------
"$py" "$root/bench/gpu/summarize.py" "$out" "$dry" | tee "$out/summary.txt"
if [[ "${PACK:-0}" == 1 ]]; then
  (cd "$out" && tar czf details.tar.gz --exclude=details.tar.gz --exclude=summary.json --exclude=summary.txt \
     --exclude=run_all.log . && find . -mindepth 1 -maxdepth 1 ! -name details.tar.gz ! -name summary.json \
     ! -name summary.txt ! -name run_all.log -exec rm -rf {} +)
fi
say "done in $(($(date +%s) - t_start)) s: $out/summary.json"
