#!/usr/bin/env bash
# Sanitizer builds of the test suite (one command each; see docs/notes/hardening.md).
#   bash scripts/sanitize.sh asan            # ASan+UBSan build (build-asan), the whole CTest suite
#   bash scripts/sanitize.sh asan -L unit    # extra arguments go to ctest
#   bash scripts/sanitize.sh asan-ci         # what CI runs: accel_unit_tests under ASan+UBSan
#   bash scripts/sanitize.sh tsan            # TSan build (build-tsan): the data loader's threads and
#                                            # the launcher (its unit and real-process tests)
# LibTorch itself is not instrumented: reports inside it are not ours (suppressions in
# tests/sanitizers/ name only torch/c10/gomp frames). Any report in accel's code fails the run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode="${1:-asan}"
[ $# -gt 0 ] && shift
ACCEL_SKIP_BUILD=1 bash scripts/setup.sh
torch_prefix="$("$root/.venv/bin/python" -c 'import torch;print(torch.utils.cmake_prefix_path)')"
supp="$root/tests/sanitizers"

configure() {  # configure DIR SANITIZERS
  if [ ! -f "$1/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
      -DCMAKE_PREFIX_PATH="$torch_prefix" -DACCEL_PYTHON="$root/.venv/bin/python" \
      -DACCEL_SANITIZE="$2" -DACCEL_BUILD_BENCH=OFF >/dev/null
  fi
}

export OMP_NUM_THREADS=1
case "$mode" in
  asan|asan-ci)
    build="${ACCEL_ASAN_BUILD_DIR:-$root/build-asan}"
    configure "$build" "address,undefined"
    export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=0:strict_init_order=1:alloc_dealloc_mismatch=0"
    export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
    if [ "$mode" = asan-ci ]; then
      cmake --build "$build" -j"$(nproc)" --target accel_unit_tests
      "$build/bin/accel_unit_tests" --gtest_brief=1 "$@"
    else
      cmake --build "$build" -j"$(nproc)"
      (cd "$build" && ctest --output-on-failure --timeout 900 -j2 "$@")
    fi
    ;;
  tsan)
    build="${ACCEL_TSAN_BUILD_DIR:-$root/build-tsan}"
    configure "$build" "thread"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
    cmake --build "$build" -j"$(nproc)" --target accel_unit_tests accel_launcher_tests \
      accel_launch_integration_tests accel_launch_worker accel_launch_driver
    # Newer kernels randomise mmap more than gcc 12's TSan expects: run without ASLR where allowed.
    norand=()
    if setarch "$(uname -m)" -R true 2>/dev/null; then norand=(setarch "$(uname -m)" -R); fi
    "${norand[@]}" "$build/bin/accel_unit_tests" --gtest_brief=1 \
      --gtest_filter='DataLoader*:BatchSamplerShard*:Samplers*:Remainder*' "$@"
    "${norand[@]}" "$build/bin/accel_launcher_tests" --gtest_brief=1 "$@"
    "${norand[@]}" "$build/bin/accel_launch_integration_tests" --gtest_brief=1 "$@"
    ;;
  *) echo "usage: scripts/sanitize.sh asan|asan-ci|tsan [args]" >&2; exit 2 ;;
esac
