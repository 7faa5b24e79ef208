#!/usr/bin/env bash
# The build's apt packages for a machine that has no network and no apt access (a lent GPU machine):
# `fetch DIR` (on a Debian 12 machine with network) downloads the .deb files; `unpack DIR PREFIX` (on
# the offline machine) unpacks them into PREFIX, never into /, and prints the folder to add to
# CMAKE_PREFIX_PATH. libcurl's development symlink is pointed at the machine's own libcurl.so.4.
#
#   bash bench/gpu/offline_deps.sh fetch .debs
#   bash bench/gpu/offline_deps.sh unpack .debs /tmp/accel-deps     # prints /tmp/accel-deps/usr
# run_gpu.sh does the unpack step itself when ACCEL_DEBS names the folder.
set -euo pipefail
packages=(libgloo-dev libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libgtest-dev libgmock-dev
          libcurl4-openssl-dev)
case "${1:-}" in
  fetch)
    dir="${2:?usage: offline_deps.sh fetch DIR}"
    mkdir -p "$dir"
    (cd "$dir" && apt-get download "${packages[@]}")
    ;;
  unpack)
    dir="${2:?usage: offline_deps.sh unpack DIR PREFIX}"; prefix="${3:?usage: offline_deps.sh unpack DIR PREFIX}"
    shopt -s nullglob; debs=("$dir"/*.deb)
    ((${#debs[@]})) || { echo "offline_deps.sh: no .deb files in $dir (fetch them first)" >&2; exit 1; }
    mkdir -p "$prefix"
    for f in "${debs[@]}"; do dpkg-deb -x "$f" "$prefix"; done
    lib="$prefix/usr/lib/x86_64-linux-gnu"
    if [[ -L "$lib/libcurl.so" && ! -e "$lib/libcurl.so" ]]; then
      sys="$(ldconfig -p | awk '/libcurl\.so\.4 .*x86-64/ {print $NF; exit}')"
      [[ -n "$sys" ]] || { echo "offline_deps.sh: this machine has no libcurl.so.4 to link against" >&2; exit 1; }
      ln -sf "$sys" "$lib/libcurl.so"
    fi
    echo "$prefix/usr"
    ;;
  *) echo "usage: offline_deps.sh fetch DIR | unpack DIR PREFIX" >&2; exit 2 ;;
esac
