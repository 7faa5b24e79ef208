#!/usr/bin/env bash
# The porting example: examples/cnn_accel differs from the plain LibTorch examples/cnn_plain by
# at most 12 lines, and both learn the glyph task: the plain program, and the ported one on 1 and
# 2 processes in fp32 and bf16 (accuracy on the 1,000 test glyphs >= 0.9 after 2 epochs of 3,000).
#   tests/integration/scripts/cnn_port.sh <source dir> <accel> <cnn_plain> <cnn_accel>
set -uo pipefail
src="$1"; accel="$2"; plain="$3"; ported="$4"
export OMP_NUM_THREADS=1 ACCEL_TIMEOUT=120
fail=0; pass=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | tail -20; }
changed=$(diff "$src/examples/cnn_plain/main.cpp" "$src/examples/cnn_accel/main.cpp" | grep -c '^>')
if [ "$changed" -le 12 ]; then ok "the port changes $changed lines (<= 12)"; else bad "the port changes $changed lines (> 12)"; fi
accuracy() { grep -o 'Accuracy: [0-9.]*' | tail -1 | awk '{print $2}'; }
check() {
  local name="$1"; shift
  local out; out=$("$@" 2>&1); local rc=$?
  local acc; acc=$(echo "$out" | accuracy)
  if [ $rc -eq 0 ] && [ -n "$acc" ] && awk -v a="$acc" 'BEGIN{exit !(a >= 0.9)}'; then ok "$name (accuracy $acc)";
  else bad "$name (rc $rc, accuracy '${acc}')" "$out"; fi
}
check "plain LibTorch" "$plain" 2 3000
for mp in no bf16; do
  for n in 1 2; do
    check "accel, $n process(es), mixed precision $mp" "$accel" launch --num_processes "$n" --mixed_precision "$mp" "$ported" 2 3000
  done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
