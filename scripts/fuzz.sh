#!/usr/bin/env bash
# libFuzzer runs of accel's file parsers (tests/fuzz; docs/notes/hardening.md "Fuzzing").
#
#   bash scripts/fuzz.sh                         # every target, 600 s each, two at a time
#   bash scripts/fuzz.sh --time 60 fuzz_config   # some targets, 60 s each
#   bash scripts/fuzz.sh --replay                # regression mode: replay the committed corpus and
#                                                # tests/fuzz/regressions once (-runs=0), exit 1 on a crash
#
# Idempotent: installs clang-14 + libclang-rt-14-dev with apt when missing, makes the venv with
# scripts/setup.sh when missing (torch gives CMAKE_PREFIX_PATH), configures build-fuzz with
# clang (-DACCEL_FUZZ=ON: only the parser sources, instrumented) and builds the targets.
# Working corpus: build-fuzz/corpus/<target> (seeded from tests/fuzz/corpus/<target>); crash
# inputs: build-fuzz/artifacts/<target>/; logs: build-fuzz/logs/<target>.log. A summary line per
# target gives executions, exec/s, final cov/ft and the number of crash files.
#
# Options: --time SECONDS (default 600), --jobs N (targets run at once, default 2),
#          --replay, --no-build (use the binaries as they are), --summary (only print the summary
#          of the last run from its logs), --build-dir DIR (default build-fuzz). Extra libFuzzer flags: FUZZ_FLAGS="...".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_targets=(fuzz_safetensors fuzz_manifest fuzz_config fuzz_tokenizer fuzz_text_data)
time_s=600
jobs=2
replay=0
do_build=1
summary_only=0
build="$root/build-fuzz"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_s="$2"; shift 2 ;;
    --time=*) time_s="${1#*=}"; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --replay) replay=1; shift ;;
    --no-build) do_build=0; shift ;;
    --summary) summary_only=1; do_build=0; shift ;;
    --build-dir) build="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#'; exit 0 ;;
    fuzz_*) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (targets: ${all_targets[*]})" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

say() { printf '[fuzz] %s\n' "$*"; }

# ---- 1. clang-14 with libFuzzer ---------------------------------------------------------------
need=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# ---- 2. torch from the venv ------------------------------------------------------------------
if [ ! -x "$root/.venv/bin/python" ]; then
  say "no .venv: running scripts/setup.sh (packages and venv only)"
  ACCEL_SKIP_BUILD=1 bash scripts/setup.sh
fi
torch_prefix="$("$root/.venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"

# ---- 3. configure and build (only the fuzz targets; -j2: the machine is shared) ---------------
if [ ! -f "$build/CMakeCache.txt" ]; then
  say "configuring $build with clang-14"
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DACCEL_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" >/dev/null
fi
if [ "$do_build" = 1 ]; then
  say "building ${targets[*]}"
  cmake --build "$build" --target "${targets[@]}" -j"${FUZZ_BUILD_JOBS:-2}"
fi

export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
bin="$build/tests/fuzz"

dict_of() {
  case "$1" in
    fuzz_safetensors) echo "$root/tests/fuzz/dicts/json.dict" ;;
    fuzz_manifest) echo "$root/tests/fuzz/dicts/manifest.dict" ;;
    fuzz_config) echo "$root/tests/fuzz/dicts/yaml.dict" ;;
    fuzz_tokenizer) echo "$root/tests/fuzz/dicts/tokenizer.dict" ;;
    fuzz_text_data) echo "$root/tests/fuzz/dicts/text_data.dict" ;;
  esac
}

# ---- 4a. regression mode ---------------------------------------------------------------------
if [ "$replay" = 1 ]; then
  mkdir -p "$build/logs"
  failed=0
  for t in "${targets[@]}"; do
    dirs=()
    for d in "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t"; do
      [ -d "$d" ] && dirs+=("$d")
    done
    if "$bin/$t" -runs=0 "${dirs[@]}" >"$build/logs/$t.replay.log" 2>&1; then
      n=$(sed -nE "s/.*seed corpus: files: ([0-9]+).*/\1/p" "$build/logs/$t.replay.log" | head -1)
      say "$t: replayed $n inputs: ok"
    else
      say "$t: FAILED (see $build/logs/$t.replay.log)"
      tail -30 "$build/logs/$t.replay.log" >&2
      failed=1
    fi
  done
  exit $failed
fi

# ---- 4b. fuzzing -------------------------------------------------------------------------------
run_one() {
  local t="$1"
  local corpus="$build/corpus/$t" art="$build/artifacts/$t" log="$build/logs/$t.log"
  mkdir -p "$corpus" "$art" "$build/logs"
  local seeds=()
  for d in "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t"; do
    [ -d "$d" ] && seeds+=("$d")
  done
  # Stops at the first finding (its input goes to artifacts/); FUZZ_FLAGS="-fork=1 -ignore_crashes=1" goes on.
  "$bin/$t" -max_total_time="$time_s" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict="$(dict_of "$t")" -artifact_prefix="$art/" ${FUZZ_FLAGS:-} \
    "$corpus" "${seeds[@]}" >"$log" 2>&1 || true
}

summary() {
  local t="$1" log="$build/logs/$1.log"
  local last execs rate cov ft crashes
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1 || true)
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1 || true)
  [ -z "$execs" ] && execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
  [ -z "$rate" ] && rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$last")
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
  crashes=$(find "$build/artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
            -o -name 'oom-*' \) 2>/dev/null | wc -l || true)
  printf '%-18s execs %10s  exec/s %7s  cov %6s  ft %7s  findings %s\n' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
}

if [ "$summary_only" = 1 ]; then
  for t in "${targets[@]}"; do summary "$t"; done
  exit 0
fi

say "fuzzing ${targets[*]} for ${time_s}s each, $jobs at a time (logs in $build/logs)"
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
echo
say "summary (findings = crash/leak/timeout/oom files in $build/artifacts/<target>/)"
for t in "${targets[@]}"; do summary "$t"; done
