#!/usr/bin/env bash
# Idempotent: creates .venv-ref with the pinned reference stack (tools/reference/requirements.txt):
# transformers, tokenizers, accelerate, tensorboard on torch==2.13.0 (CPU). Used by the fixture
# generators in tools/reference/, by tests that read files back with the real Python libraries,
# and by bench/compare_hf. Prints the venv's python path on its last line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-ref"
req="$root/tools/reference/requirements.txt"
stamp="$venv/.accel-requirements"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
  echo "[setup-reference] installing $req" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
