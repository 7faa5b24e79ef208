#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds accel against the machine's own (CUDA) torch, runs the
# test suite there (the CUDA code paths: device placement, autocast on cuda, CUDA memory stats)
# and the precision benchmark with bert-base-uncased at seq 512 (fp32 / bf16 / fp16, CUDA caching
# allocator peaks, GEMM peak per dtype and MFU). Everything lands in OUT.
#
#   bash bench/gpu/run_gpu.sh [OUT=bench-gpu-out] [extra args for `accel bench precision`]
# Env: PYTHON   a python whose torch has CUDA (default python3)
#      ACCEL_BUILD_DIR (default build-gpu), JOBS (default nproc)
#      SKIP_TESTS=1 to run only the benchmark, SKIP_BENCH=1 to run only the tests
#      ACCEL_DEBS   a folder of the apt packages' .deb files (bench/gpu/offline_deps.sh fetch), for a
#                   machine with no network: they are unpacked under /tmp/accel-deps, not into /
# Needs: cmake >= 3.22, a C++20 compiler, the CUDA toolkit that matches torch.version.cuda (torch's
# CMake config looks for it; set CUDAToolkit_ROOT when it is not in /usr/local/cuda), and the apt
# packages of scripts/setup.sh (libgloo-dev libgtest-dev libgmock-dev libyaml-cpp-dev
# nlohmann-json3-dev libcurl4-openssl-dev gnuplot-nox).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$(realpath -m "${1:-bench-gpu-out}")"; shift || true
py="${PYTHON:-python3}"
build="${ACCEL_BUILD_DIR:-$root/build-gpu}"
jobs="${JOBS:-$(nproc)}"
mkdir -p "$out"
say() { printf '[run_gpu] %s\n' "$*"; }

# ---- 1. the machine's torch must see a GPU ------------------------------------------------------
"$py" - <<'PY' | tee "$out/torch.txt"
import torch
assert torch.cuda.is_available(), "this torch sees no CUDA GPU (torch %s, built for CUDA %s)" % (torch.__version__, torch.version.cuda)
print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.get_device_name(0),
      "capability", ".".join(map(str, torch.cuda.get_device_capability(0))), "bf16", torch.cuda.is_bf16_supported())
PY
tp="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia-smi.csv" || true

# ---- 2. configure and build against it ----------------------------------------------------------
if [[ -z "${CUDAToolkit_ROOT:-}" && -d /usr/local/cuda ]]; then export CUDAToolkit_ROOT=/usr/local/cuda; fi
if [[ -n "${CUDAToolkit_ROOT:-}" ]]; then export PATH="$CUDAToolkit_ROOT/bin:$PATH"; fi
command -v nvcc >/dev/null || say "warning: no nvcc on PATH; torch's CMake config may not find the CUDA toolkit (set CUDAToolkit_ROOT)"
prefix="$tp"
if [[ -n "${ACCEL_DEBS:-}" ]]; then
  deps="$(bash "$root/bench/gpu/offline_deps.sh" unpack "$ACCEL_DEBS" /tmp/accel-deps)"
  prefix="$tp;$deps"
  say "apt packages unpacked from $ACCEL_DEBS into $deps"
fi
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
say "configuring $build against $tp"
cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
      -DACCEL_PYTHON="$(command -v "$py")" 2>&1 | tee "$out/configure.log"
grep -q "CUDA: yes" "$out/configure.log" || { say "CMake did not find CUDA torch (see $out/configure.log)"; exit 1; }
say "building (-j$jobs)"
keep=(); [[ ${#gen[@]} -gt 0 ]] && keep=(-- -k 0)   # ninja: show every failing file, not the first
if ! cmake --build "$build" -j"$jobs" "${keep[@]}" >"$out/build.log" 2>&1; then
  grep -E "error|Error" "$out/build.log" | head -n 60; say "build failed: $out/build.log"; exit 1
fi
tail -n 3 "$out/build.log"

# ---- 3. tests on the GPU machine ------------------------------------------------------------------
if [[ "${SKIP_TESTS:-0}" != 1 ]]; then
  say "ctest -L unit on the GPU machine (the Accelerator picks cuda:0 wherever a test does not force the CPU)"
  ctest --test-dir "$build" -L unit -j"$jobs" --timeout "${CTEST_TIMEOUT:-300}" --output-on-failure 2>&1 | tee "$out/ctest.log" | tail -n 15 || \
    say "some tests failed: $out/ctest.log"
fi

# ---- 4. the precision benchmark -------------------------------------------------------------------
[[ "${SKIP_BENCH:-0}" == 1 ]] && { say "done: $out (ctest.log, torch.txt)"; exit 0; }
say "accel bench precision: bert-base-uncased, seq 512, batch 16"
"$build/bin/accel" bench precision --config bert-base-uncased --seq_len 512 --batch_size 16 --steps 20 \
  --warmup 3 --gemm_sizes 2048,4096,8192 --gemm_reps 20 --json "$out/precision_gpu.json" \
  --png "$out/precision_gpu.png" "$@" 2>&1 | tee "$out/precision_gpu.txt"
say "done: $out (precision_gpu.txt/.json/.png, ctest.log, torch.txt)"
