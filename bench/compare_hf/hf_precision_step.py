#!/usr/bin/env python3
"""The reference side of bench/compare_hf/run.sh and bench/gpu/run_all.sh: the training steps of
`accel bench precision --single P` (same architecture with random init, batch, sequence length,
AdamW lr and weight decay, precision, steps, thread count, batches) through Hugging Face
accelerate + transformers, on the CPU (default) or one GPU (--device cuda).

One process:   python hf_precision_step.py --precision bf16 --json-out r.json
Two processes: ACCELERATE_USE_CPU=1 python -m torch.distributed.run --nproc_per_node 2 \
                   hf_precision_step.py --precision bf16 --json-out r.json
GPU:           python hf_precision_step.py --device cuda --config bert-base-uncased --seq_len 512 \
                   --precision bf16 --json-out r.json
Rank 0 writes one JSON object with the fields the accel side writes (samples_per_s,
step_time_median_s, peak_rss_bytes or cuda_peak_allocated_bytes, loss_last, ...).
--data lengths --lengths_file F makes the batches `accel bench precision --data lengths` makes:
random ids, batch i padded to its longest of the lengths F lists (in order, capped at seq_len).
"""
import argparse
import json
import os
import resource
import statistics
import time

import torch
from accelerate import Accelerator
from transformers import BertConfig, BertForSequenceClassification

# The built-in architectures of accel's BertConfig::from_name (the rest are bert-base defaults:
# vocab 30522, 512 positions, gelu, dropout 0.1, LayerNorm eps 1e-12).
ARCHITECTURES = {
    "bert-base-uncased": {},
    "bert-large-uncased": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "all-MiniLM-L6-v2": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "bert-tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="all-MiniLM-L6-v2", choices=sorted(ARCHITECTURES))
    ap.add_argument("--seq_len", type=int, default=256)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precision", default="no", choices=["no", "bf16", "fp16"])
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--num_threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--data", default="random", choices=["random", "lengths"])
    ap.add_argument("--lengths_file", default="")
    ap.add_argument("--adamw", default="auto", choices=["auto", "fused", "foreach", "for-loop"],
                    help="torch.optim.AdamW implementation; auto: fused on CUDA (the Trainer's default "
                         "adamw_torch_fused), torch's default elsewhere")
    ap.add_argument("--json-out", dest="json_out", required=True)
    a = ap.parse_args()

    cuda = a.device == "cuda"
    if a.num_threads > 0:
        torch.set_num_threads(a.num_threads)
    acc = Accelerator(mixed_precision=a.precision, cpu=not cuda)
    if cuda:
        assert acc.device.type == "cuda", f"--device cuda, but accelerate chose {acc.device}"
    torch.manual_seed(a.seed)
    config = BertConfig(**ARCHITECTURES[a.config], num_labels=2, attn_implementation="sdpa")
    model = BertForSequenceClassification(config)
    adamw = a.adamw if a.adamw != "auto" else ("fused" if cuda else "default")
    kw = {"fused": dict(fused=True), "foreach": dict(foreach=True), "for-loop": dict(foreach=False)}.get(adamw, {})
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01, **kw)
    model, opt = acc.prepare(model, opt)
    model.train()

    # Batches as accel makes them: uniform ids in [1000, vocab), random labels; "random": every
    # token real; "lengths": batch i padded to the longest of its lengths (pad id 0).
    g = torch.Generator().manual_seed(a.seed * 1000003 + acc.process_index + 1)
    low = min(1000, config.vocab_size - 1)
    batches = []
    if a.data == "lengths":
        with open(a.lengths_file) as f:
            lengths = [int(x) for x in f.read().split()]
        count = a.warmup + a.steps
        for i in range(count):
            lens = [min(a.seq_len, lengths[((i + acc.process_index * count) * a.batch_size + j) % len(lengths)])
                    for j in range(a.batch_size)]
            t = max(lens)
            mask = (torch.arange(t).unsqueeze(0) < torch.tensor(lens).unsqueeze(1)).long()
            ids = torch.randint(low, config.vocab_size, (a.batch_size, t), generator=g) * mask
            batches.append(dict(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                                labels=torch.randint(0, 2, (a.batch_size,), generator=g)))
    else:
        for _ in range(min(a.warmup + a.steps, 8)):
            ids = torch.randint(low, config.vocab_size, (a.batch_size, a.seq_len), generator=g)
            batches.append(dict(input_ids=ids, attention_mask=torch.ones_like(ids),
                                token_type_ids=torch.zeros_like(ids),
                                labels=torch.randint(0, 2, (a.batch_size,), generator=g)))
    batches = [{k: v.to(acc.device) for k, v in b.items()} for b in batches]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses, tokens, real_tokens = [], [], 0, 0
    for s in range(a.warmup + a.steps):
        batch = batches[s % len(batches)]
        sync()
        t0 = time.perf_counter()
        out = model(**batch)
        acc.backward(out.loss)
        opt.step()
        opt.zero_grad()
        sync()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
            losses.append(out.loss.detach())
            tokens += batch["input_ids"].numel()
            real_tokens += int(batch["attention_mask"].sum())

    med = statistics.median(times)
    result = {
        "side": "hf",
        "precision": a.precision,
        "device": str(acc.device),
        "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
        "adamw": adamw,
        "data": a.data,
        "world_size": acc.num_processes,
        "num_threads": torch.get_num_threads(),
        "steps": a.steps,
        "step_times_s": times,
        "step_time_median_s": med,
        "samples_per_s": a.batch_size * acc.num_processes / med,
        "tokens_per_s": tokens / len(times) * acc.num_processes / med,
        "real_tokens_per_s": real_tokens * acc.num_processes / sum(times),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
        "cuda_peak_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "cuda_peak_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
        "loss_last": float(losses[-1]),
        "versions": {"torch": torch.__version__, "accelerate": __import__("accelerate").__version__,
                     "transformers": __import__("transformers").__version__},
    }
    if acc.is_main_process:
        with open(a.json_out, "w") as f:
            json.dump(result, f)
    acc.end_training()


if __name__ == "__main__":
    main()
