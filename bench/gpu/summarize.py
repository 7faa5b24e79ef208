#!/usr/bin/env python3
"""Summary of bench/gpu/run_all.sh: reads every JSON the phases wrote in OUT and writes
OUT/summary.json (phases, unit tests, collectives, precision, transformers + accelerate, the A/B
runs, IMDb-shaped tokens/s and the acceptance ratios) and prints it as a table.

    python3 bench/gpu/summarize.py OUT [DRY_RUN=0|1]
"""
import json
import os
import re
import sys

# Acceptance goals (bert-base, batch 16 x seq 512, bf16, accel vs transformers + accelerate).
GOALS = {"samples_per_s_ratio": (">=", 1.3), "mfu": (">=", 0.45), "peak_memory_ratio": ("<=", 0.9)}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def phases(out):
    rows = []
    try:
        with open(os.path.join(out, "phases.tsv")) as f:
            for line in f:
                name, status, secs, note = (line.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
                rows.append({"phase": name, "status": status, "seconds": int(secs or 0), "note": note})
    except OSError:
        pass
    return rows


def unit_tests(out):
    try:
        text = open(os.path.join(out, "ctest.log"), errors="replace").read()
    except OSError:
        return None
    m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", text)
    if not m:
        return {"complete": False, "note": "no CTest summary line (cut off?)"}
    failed = re.findall(r"\d+ - (\S+) \((Failed|Timeout|SEGFAULT|Subprocess aborted|Not Run|Exception)[^)]*\)", text)
    skipped = len(re.findall(r"\*\*\*Skipped|Skipped ", text))
    total, nfail = int(m.group(3)), int(m.group(2))
    return {"complete": True, "total": total, "passed": total - nfail, "failed": nfail,
            "failed_tests": [f"{n} ({why})" for n, why in failed], "skipped_lines": skipped}


def result(report, precision):
    if not report:
        return None
    for r in report.get("results", []):
        if r.get("precision") == precision and r.get("ran"):
            return r
    return None


def ratio(a, b):
    return a / b if a and b else None


def main():
    out = sys.argv[1]
    dry = len(sys.argv) > 2 and sys.argv[2] == "1"
    s = {"dry_run": dry, "env": load(os.path.join(out, "env.json")), "phases": phases(out),
         "unit_tests": unit_tests(out)}
    s["collectives"] = {name[:-5]: load(os.path.join(out, name)) for name in sorted(os.listdir(out))
                        if name.startswith("collectives_") and name.endswith(".json")}

    prec = load(os.path.join(out, "precision.json"))
    s["precision"] = None
    if prec:
        s["precision"] = {"model": prec["model"], "device": prec["device"], "batch_size": prec["batch_size"],
                          "seq_len": prec["seq_len"], "gemm_peak_tflops": prec.get("gemm_peak_tflops"),
                          "flops_per_step": prec.get("flops_per_step"), "results": {}}
        for r in prec.get("results", []):
            s["precision"]["results"][r["precision"]] = {k: r.get(k) for k in (
                "ran", "skipped_reason", "samples_per_s", "step_time_median_s", "model_tflops", "mfu",
                "cuda_peak_allocated_bytes", "cuda_peak_reserved_bytes", "peak_rss_bytes", "loss_last")}
    hf = {p: load(os.path.join(out, f"hf_{p}.json")) for p in ("bf16", "fp32")}
    s["transformers_accelerate"] = {p: ({k: r.get(k) for k in ("samples_per_s", "step_time_median_s", "adamw",
                                                                "cuda_peak_allocated_bytes", "peak_rss_bytes",
                                                                "loss_last", "versions", "device_name")}
                                        if r else None) for p, r in hf.items()}

    # A/B of the speed options (bf16): samples/s, ratio to the baseline, MFU against the measured peak.
    peak = (prec or {}).get("gemm_peak_tflops", {}).get("bf16") or 0
    ab = {}
    for name in sorted(os.listdir(out)):
        if not (name.startswith("ab_") and name.endswith(".json")):
            continue
        rep = load(os.path.join(out, name))
        r = result(rep, "bf16")
        if not r:
            ab[name[3:-5]] = {"ran": False, "notes": (rep or {}).get("notes")}
            continue
        ab[name[3:-5]] = {"ran": True, "samples_per_s": r["samples_per_s"], "step_ms": r["step_time_median_s"] * 1e3,
                          "cuda_peak_allocated_bytes": r.get("cuda_peak_allocated_bytes"),
                          "loss_last": r.get("loss_last"),
                          "mfu": (r["model_tflops"] / peak) if peak and r.get("model_tflops") else None,
                          "speed_options": rep.get("speed_options"), "notes": rep.get("notes")}
    base = ab.get("baseline", {}).get("samples_per_s")
    for v in ab.values():
        v["vs_baseline"] = ratio(v.get("samples_per_s"), base)
    s["ab"] = ab

    # IMDb-shaped: real tokens/s (padding not counted).
    imdb = {}
    for name, side in (("imdb_accel", "accel"), ("imdb_accel_fast", "accel_fast_paths"), ("imdb_hf", "hf")):
        rep = load(os.path.join(out, name + ".json"))
        if not rep:
            continue
        r = rep if side == "hf" else result(rep, "bf16")
        if r:
            imdb[side] = {"real_tokens_per_s": r.get("real_tokens_per_s"), "samples_per_s": r.get("samples_per_s"),
                          "tokens_per_s_with_padding": r.get("tokens_per_s")}
    if "hf" in imdb:
        for side in ("accel", "accel_fast_paths"):
            if side in imdb:
                imdb[side]["vs_hf"] = ratio(imdb[side]["real_tokens_per_s"], imdb["hf"]["real_tokens_per_s"])
    s["imdb_tokens_per_s"] = imdb

    # Acceptance: default accel bf16 and the best A/B variant, against transformers + accelerate bf16.
    acc = {"goals": {k: f"{op} {v}" for k, (op, v) in GOALS.items()}}
    a = result(prec, "bf16")
    h = hf.get("bf16")
    if a and h:
        acc["default"] = {"samples_per_s_ratio": ratio(a["samples_per_s"], h["samples_per_s"]), "mfu": a.get("mfu"),
                          "peak_memory_ratio": ratio(a.get("cuda_peak_allocated_bytes"), h.get("cuda_peak_allocated_bytes"))}
    ran = {k: v for k, v in ab.items() if v.get("ran")}
    if ran and h:
        best_name = max(ran, key=lambda k: ran[k]["samples_per_s"])
        b = ran[best_name]
        acc["best_option_set"] = {"variant": best_name, "samples_per_s_ratio": ratio(b["samples_per_s"], h["samples_per_s"]),
                                  "mfu": b.get("mfu"),
                                  "peak_memory_ratio": ratio(b.get("cuda_peak_allocated_bytes"), h.get("cuda_peak_allocated_bytes"))}
    for key in ("default", "best_option_set"):
        if key in acc:
            acc[key]["met"] = {g: (acc[key].get(g) is not None and
                                   (acc[key][g] >= v if op == ">=" else acc[key][g] <= v))
                               for g, (op, v) in GOALS.items()}
    if imdb.get("accel", {}).get("real_tokens_per_s"):
        acc["imdb_real_tokens_per_s"] = imdb["accel"]["real_tokens_per_s"]
    s["acceptance"] = acc
    s["skipped"] = [f"{p['phase']}: {p['note']}" for p in s["phases"] if p["status"] != "ok"]

    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(s, f, indent=2)

    # ---- printed form
    def f(x, fmt="{:.3f}"):
        return "-" if x is None else fmt.format(x)
    print(f"== summary ({'DRY RUN, CPU, tiny sizes: the figures mean nothing' if dry else 'GPU'}): {out}/summary.json")
    for p in s["phases"]:
        print(f"  {p['phase']:<22} {p['status']:<8} {p['seconds']:>4} s  {p['note']}")
    ut = s["unit_tests"]
    if ut:
        print("unit tests:", f"{ut.get('passed')}/{ut.get('total')} passed" if ut.get("complete") else ut.get("note"),
              ("; failed: " + ", ".join(ut["failed_tests"][:10])) if ut.get("failed_tests") else "")
    for name, c in s["collectives"].items():
        if c:
            print(f"{name}: {'PASS' if c.get('ok') else 'FAIL'} ({len(c.get('checks', []))} checks, {c.get('device')})")
    if s["precision"]:
        for p, r in s["precision"]["results"].items():
            if r.get("ran"):
                print(f"accel {p:<4}: {f(r['samples_per_s'], '{:.1f}')} samples/s, MFU {f(r.get('mfu'), '{:.1%}')}, "
                      f"peak {f((r.get('cuda_peak_allocated_bytes') or r.get('peak_rss_bytes') or 0) / 2**20, '{:.0f}')} MiB")
    for p, r in s["transformers_accelerate"].items():
        if r:
            print(f"HF    {p:<4}: {f(r['samples_per_s'], '{:.1f}')} samples/s, "
                  f"peak {f((r.get('cuda_peak_allocated_bytes') or r.get('peak_rss_bytes') or 0) / 2**20, '{:.0f}')} MiB")
    for k, v in ab.items():
        if v.get("ran"):
            print(f"A/B {k:<22} {f(v['samples_per_s'], '{:.1f}')} samples/s  x{f(v.get('vs_baseline'))} of baseline  "
                  f"MFU {f(v.get('mfu'), '{:.1%}')}")
        else:
            print(f"A/B {k:<22} did not run")
    for k, v in imdb.items():
        print(f"IMDb-shaped {k:<17} {f(v.get('real_tokens_per_s'), '{:.0f}')} real tokens/s"
              + (f"  x{f(v.get('vs_hf'))} of HF" if v.get("vs_hf") else ""))
    for key in ("default", "best_option_set"):
        if key in acc:
            a = acc[key]
            print(f"acceptance ({key}{', ' + a['variant'] if 'variant' in a else ''}): samples/s ratio "
                  f"{f(a['samples_per_s_ratio'])} (>= 1.3), MFU {f(a['mfu'], '{:.1%}')} (>= 45 %), "
                  f"peak memory ratio {f(a['peak_memory_ratio'])} (<= 0.9)")
    for line in s["skipped"]:
        print("not done:", line)


if __name__ == "__main__":
    main()
