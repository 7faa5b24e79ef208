#!/usr/bin/env bash
# The installed package, as another project sees it:
#   1. `cmake --install BUILD` into a prefix under BUILD/install-test (remade on every run);
#   2. libaccel.so needs neither yaml-cpp nor libcurl (those belong to the `accel` command and to
#      libaccel_datasets), and the launcher's headers are not installed;
#   3. tests/install/consumer (CMAKE_CXX_STANDARD 17, find_package(accel), accel::accel) configures,
#      builds and runs against the prefix (its compile is cached by ccache when given);
#   4. the installed `accel --version` starts with no LD_LIBRARY_PATH.
# Usage: install_test.sh BUILD_DIR CMAKE_COMMAND [CCACHE]
set -euo pipefail
build="$1"
cmake="$2"
ccache="${3:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$build/install-test"
prefix="$work/prefix"
fail() { echo "install test: FAIL: $*" >&2; exit 1; }

rm -rf "$prefix" "$work/consumer"
mkdir -p "$work"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
libdir="$(dirname "$(find "$prefix" -name 'libaccel.so' | head -1)")"
[ -f "$libdir/libaccel.so" ] || fail "no libaccel.so under $prefix"
echo "installed into $prefix (libraries in ${libdir#"$prefix"/})"

needed="$(readelf -d "$libdir/libaccel.so" | grep NEEDED || true)"
if grep -Eiq 'yaml|curl' <<<"$needed"; then
  fail "libaccel.so needs what only the CLI or the datasets library should: $(grep -Ei 'yaml|curl' <<<"$needed" | tr -s ' ')"
fi
[ ! -e "$prefix/include/accel/launcher" ] || fail "the launcher's headers were installed"
echo "libaccel.so needs neither yaml-cpp nor libcurl"

launcher=()
if [ -n "$ccache" ] && [ -x "$ccache" ]; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$ccache"); fi
"$cmake" -S "$here/consumer" -B "$work/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" >"$work/consumer-configure.log" 2>&1 ||
  { cat "$work/consumer-configure.log"; fail "the consumer project does not configure"; }
"$cmake" --build "$work/consumer" >"$work/consumer-build.log" 2>&1 ||
  { tail -40 "$work/consumer-build.log"; fail "the consumer project (C++17, accel::accel) does not build"; }
env -u LD_LIBRARY_PATH "$work/consumer/consumer" || fail "the consumer program did not train"

version="$(env -u LD_LIBRARY_PATH "$prefix/bin/accel" --version 2>&1)" ||
  fail "the installed accel does not start: $version"
echo "installed: $version"
[[ "$version" == accel\ * ]] || fail "unexpected output of accel --version: $version"
echo "install test: OK"
