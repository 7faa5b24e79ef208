"""Writes tests/fixtures/precision/grad_scaler.json: torch.amp.GradScaler("cpu") driven through a
scripted series of finite / inf / nan gradients with SGD (lr 0.1), recording whether each step was
skipped, the scale after update() and the weight. Run with the reference venv:
    .venv-ref/bin/python tools/reference/make_scaler_fixture.py
"""
import json
import math
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "precision", "grad_scaler.json")

init_scale, growth, backoff, interval = 1024.0, 2.0, 0.5, 3
w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
opt = torch.optim.SGD([w], lr=0.1)
scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_factor=growth,
                              backoff_factor=backoff, growth_interval=interval)
pattern = ["ok", "ok", "ok", "inf", "ok", "nan", "inf", "ok", "ok", "ok", "ok", "ok", "ok", "inf", "ok"]
steps = []
for i, kind in enumerate(pattern):
    opt.zero_grad()
    base = torch.tensor([0.5 + i, -1.0, 0.25 * i])
    loss = (w * base).sum()
    scaler.scale(loss).backward()
    scaled_grad = [float(x) for x in w.grad.tolist()]  # before the inf/nan is injected
    if kind == "inf":
        w.grad[1] = math.inf
    elif kind == "nan":
        w.grad[0] = math.nan
    before = w.detach().clone()
    scaler.step(opt)
    scaler.update()
    skipped = bool(torch.equal(before, w.detach()))
    steps.append({"kind": kind, "scaled_grad": scaled_grad, "skipped": skipped,
                  "scale_after": scaler.get_scale(), "weight_after": w.detach().tolist()})

with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "init_scale": init_scale, "growth_factor": growth,
               "backoff_factor": backoff, "growth_interval": interval,
               "initial_weight": [1.0, -2.0, 0.5], "steps": steps}, f, indent=1)
print("wrote", OUT)
