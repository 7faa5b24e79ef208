#!/usr/bin/env python3
"""Writes the committed BERT and safetensors fixtures in tests/fixtures/bert/ with the real
Python libraries (versions pinned in tools/reference/requirements.txt).

    .venv-ref/bin/python tools/reference/make_bert_fixtures.py [--out tests/fixtures/bert]

Outputs (all small; the tests load exact weights, never re-create random ones):
  tiny/config.json, tiny/model.safetensors   a seeded tiny BertForSequenceClassification (transformers)
  tiny/inputs.safetensors                    input_ids, attention_mask (padded rows, one fully
                                             padded), token_type_ids, labels, labels_float
  tiny/expected.safetensors                  hidden_states.{0..L}, last_hidden_state, pooler_output,
                                             logits, loss, loss_regression, loss_multi_label, and
                                             grad.<parameter> after one backward of `loss`
  sharded/                                   the same model saved by transformers in 3+ shards
  safetensors/dtypes.safetensors             one tensor per dtype with known values, written by the
                                             safetensors library (read back by our reader, and
                                             compared byte for byte with our writer)
  manifest.json                              versions, settings, tolerances
"""
import argparse
import json
import os
import shutil

import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification

SEED = 1234


def tiny_config():
    return BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=64,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )


def make_model():
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(tiny_config())
    # Perturb every parameter so that no value is trivially 0/1 (LayerNorm, biases) and
    # attention patterns are far from uniform.
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)
    return model.eval()


def make_inputs():
    g = torch.Generator().manual_seed(SEED + 2)
    B, T = 4, 12
    input_ids = torch.randint(1, 100, (B, T), generator=g)
    lengths = [12, 7, 3, 0]  # full, padded, short, fully padded
    attention_mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        attention_mask[b, :n] = 1
        input_ids[b, n:] = 0  # pad token
    token_type_ids = torch.zeros(B, T, dtype=torch.long)
    token_type_ids[0, 6:] = 1
    token_type_ids[1, 4:7] = 1
    labels = torch.tensor([0, 2, 1, 2])
    labels_float = torch.rand(B, 3, generator=g)
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                labels=labels, labels_float=labels_float)


def write_tiny(out):
    model = make_model()
    tiny = os.path.join(out, "tiny")
    shutil.rmtree(tiny, ignore_errors=True)
    model.save_pretrained(tiny)
    inputs = make_inputs()
    save_file(inputs, os.path.join(tiny, "inputs.safetensors"), metadata={"format": "pt"})

    res = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                token_type_ids=inputs["token_type_ids"], labels=inputs["labels"],
                output_hidden_states=True)
    base = model.bert(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                      token_type_ids=inputs["token_type_ids"])
    expected = {}
    for i, h in enumerate(res.hidden_states):
        expected[f"hidden_states.{i}"] = h.detach().clone()
    expected["last_hidden_state"] = base.last_hidden_state.detach().clone()
    expected["pooler_output"] = base.pooler_output.detach().clone()
    expected["logits"] = res.logits.detach().clone()
    expected["loss"] = res.loss.detach().clone()
    logits = res.logits.detach()
    expected["loss_regression"] = torch.nn.functional.mse_loss(logits, inputs["labels_float"])
    expected["loss_multi_label"] = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, inputs["labels_float"])
    res.loss.backward()
    for name, p in model.named_parameters():
        expected[f"grad.{name}"] = p.grad.detach().clone()
    save_file(expected, os.path.join(tiny, "expected.safetensors"), metadata={"format": "pt"})

    sharded = os.path.join(out, "sharded")
    shutil.rmtree(sharded, ignore_errors=True)
    model.save_pretrained(sharded, max_shard_size="30KB")
    return model, expected


def write_dtypes(out):
    d = os.path.join(out, "safetensors")
    os.makedirs(d, exist_ok=True)
    base = torch.arange(6).reshape(2, 3)
    vals = torch.tensor([[-1.5, 0.0, 2.25], [3.0, -0.125, 100.0]], dtype=torch.float64)
    tensors = {
        "f64": vals.to(torch.float64),
        "f32": vals.to(torch.float32),
        "f16": vals.to(torch.float16),
        "bf16": vals.to(torch.bfloat16),
        "i64": (base - 3).to(torch.int64) * 1_000_000_000_000,
        "i32": (base - 3).to(torch.int32) * 100_000,
        "i16": (base - 3).to(torch.int16) * 1000,
        "i8": (base - 3).to(torch.int8),
        "u8": (base * 50).to(torch.uint8),
        "bool": (base % 2 == 1),
        "scalar": torch.tensor(7.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    save_file(tensors, os.path.join(d, "dtypes.safetensors"),
              metadata={"format": "pt", "writer": "safetensors-python"})


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "fixtures", "bert"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    write_tiny(out)
    write_dtypes(out)
    manifest = {
        "generator": "tools/reference/make_bert_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "safetensors": safetensors.__version__},
        "seed": SEED,
        "attn_implementation": "sdpa (transformers default)",
        "mode": "eval (dropout off), fp32",
        "inputs": "B=4, T=12; rows: full, 7 tokens, 3 tokens, fully padded",
        "tolerance": {"max_abs": 1e-4, "rtol": 1e-5},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
