#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up (idempotent), build, then CTest.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -L unit    # extra arguments go to ctest (here: the fast unit tests only)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# Reference Python stack (tensorboard's event reader, transformers) for the read-back tests.
bash scripts/setup-reference.sh >/dev/null
build="${ACCEL_BUILD_DIR:-$root/build}"
cd "$build"
ctest --output-on-failure --timeout 600 -j2 "$@"
# CI (CI=true) also runs the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, in
# their own build folder; ACCEL_TEST_SANITIZE=1 asks for it elsewhere (it costs a second build).
if [ "${CI:-}" = "true" ] || [ "${ACCEL_TEST_SANITIZE:-0}" = "1" ]; then
  bash "$root/scripts/sanitize.sh" asan-ci
fi
