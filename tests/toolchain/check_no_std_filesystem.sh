#!/usr/bin/env bash
# Regression check for the std::filesystem interposition crash (docs/notes/toolchains.md): no
# program or library of accel may import or export a std::filesystem symbol, because pip torch
# wheels export their own statically linked copy of those functions from libtorch_cpu.so and the
# dynamic linker then binds some calls to that copy and others to the system libstdc++.
#
#   check_no_std_filesystem.sh BUILD_DIR TORCH_LIB_DIR
#
# Scans BUILD_DIR/bin/* and BUILD_DIR/src/libaccel.so* (every executable of the build lands in
# bin/). For each std::filesystem symbol found it says which torch library also exports it, i.e.
# where the dynamic linker would bind it. Exit 0: none found; 1: found (listed); 2: usage or
# nothing to scan.
set -uo pipefail
build="${1:?usage: check_no_std_filesystem.sh BUILD_DIR TORCH_LIB_DIR}"
torch_lib="${2:?usage: check_no_std_filesystem.sh BUILD_DIR TORCH_LIB_DIR}"
command -v nm >/dev/null || { echo "nm (binutils) is missing"; exit 2; }

# Every mangled std::filesystem name contains "St10filesystem" (namespace std::filesystem).
pattern='St10filesystem'
declare -A torch_has=()
for lib in "$torch_lib"/libtorch_cpu.so "$torch_lib"/libtorch_cuda.so "$torch_lib"/libtorch.so "$torch_lib"/libc10.so; do
  [[ -f "$lib" ]] || continue
  while read -r sym; do torch_has["$sym"]+="$(basename "$lib") "; done < <(
    nm -D --defined-only "$lib" 2>/dev/null | awk '{print $NF}' | grep "$pattern" | sed 's/@.*//' | sort -u)
done
echo "torch libraries in $torch_lib export ${#torch_has[@]} std::filesystem symbols"

shopt -s nullglob
files=()
for f in "$build"/bin/* "$build"/src/libaccel.so*; do
  [[ -f "$f" && ! -L "$f" ]] || continue
  head -c 4 "$f" 2>/dev/null | grep -q $'\x7fELF' && files+=("$f")
done
required=(accel_unit_tests accel_checkpoint_tests accel_text_tests accel_tracking_tests accel_models_tests)
for r in "${required[@]}"; do
  [[ -f "$build/bin/$r" ]] || { echo "FAIL: $build/bin/$r is not built; build everything first"; exit 2; }
done
((${#files[@]})) || { echo "FAIL: nothing to scan under $build"; exit 2; }

bad=0
for f in "${files[@]}"; do
  mapfile -t syms < <(nm -D "$f" 2>/dev/null | awk '{print $NF}' | grep "$pattern" | sed 's/@.*//' | sort -u)
  ((${#syms[@]})) || continue
  bad=1
  echo "FAIL: $(basename "$f") imports or exports ${#syms[@]} std::filesystem symbol(s):"
  for s in "${syms[@]}"; do
    where="${torch_has[$s]:-}"
    printf '  %s%s\n' "$(echo "$s" | c++filt)" "${where:+   <- also exported by ${where% }}"
  done
done
if ((bad)); then
  echo "HINT: use accel/core/fs.h (POSIX calls) instead of std::filesystem; see docs/notes/toolchains.md."
  exit 1
fi
echo "OK: ${#files[@]} binaries, no std::filesystem symbol imported or exported"
