#!/usr/bin/env python3
"""Generates src/text/unicode_tables.cpp: the per-code-point Unicode data the WordPiece tokenizer needs.

Run with the reference environment (tokenizers==0.23.3):

    .venv-ref/bin/python tools/reference/make_tokenizer_unicode_tables.py \
        --out src/text/unicode_tables.cpp

What it emits (see src/text/unicode_tables.h for the C++ side):
  * flag ranges: for every code point, which of these hold
      kRemove      BertNormalizer(clean_text) deletes it (NUL, U+FFFD, control/format/unassigned/...)
      kCleanSpace  BertNormalizer(clean_text) turns it into ' '
      kCjk         BertNormalizer(handle_chinese_chars) surrounds it with spaces
      kPreSpace    BertPreTokenizer splits on it (and drops it)
      kPunct       BertPreTokenizer isolates it (ASCII punctuation or Unicode P*)
      kStripDrop   strip_accents (NFD, then drop Mn) removes it entirely
      kHasStrip    strip_accents maps it to something else (see the strip map)
      kHasLower    lowercase maps it to something else (see the lower runs)
  * lower runs: lowercase mappings as runs (start, count, stride, delta), plus multi-char mappings
  * strip map: NFD-minus-Mn results for code points that change (Hangul syllables are algorithmic)

Source of truth. The values are read from Python's `unicodedata` (Unicode 14 in Python 3.11) AND
probed, code point by code point, from the real `tokenizers` library (BertNormalizer,
BertPreTokenizer), whose Rust crates carry their own, older Unicode tables. Where the two disagree
the tokenizers behaviour wins (we must produce the same ids as Hugging Face); the script prints how
many code points differ per property, so the difference stays visible.
Known approximation: canonical reordering of combining marks inside NFD is not reproduced; it can
only change output for two adjacent non-Mn marks with different combining classes (25 code points,
viramas and musical symbols), which never occurs in ordinary text.
"""
import argparse
import sys
import unicodedata

import tokenizers
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

K_REMOVE, K_CLEAN_SPACE, K_CJK, K_PRE_SPACE, K_PUNCT, K_STRIP_DROP, K_HAS_STRIP, K_HAS_LOWER = (
    1 << i for i in range(8))
MAX_CP = 0x110000
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
# Rust char::is_whitespace (Unicode White_Space property).
RUST_WHITE_SPACE = set([0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F,
                        0x205F, 0x3000] + list(range(0x2000, 0x200B)))
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_surrogate(cp):
    return 0xD800 <= cp <= 0xDFFF


def from_unicodedata(cp):
    """The same properties computed from Python's unicodedata, following tokenizers' definitions."""
    ch = chr(cp)
    cat = unicodedata.category(ch)
    flags = 0
    if cp in (0, 0xFFFD) or (cat.startswith("C") and ch not in "\t\n\r"):
        flags |= K_REMOVE
    elif cp in RUST_WHITE_SPACE:
        flags |= K_CLEAN_SPACE
    if any(a <= cp <= b for a, b in CJK_RANGES):
        flags |= K_CJK
    if cp in RUST_WHITE_SPACE:
        flags |= K_PRE_SPACE
    elif (cp < 128 and ch in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") or cat.startswith("P"):
        flags |= K_PUNCT
    strip = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
    lower = ch.lower()
    return flags, strip, lower


def probe(cp, n_clean, n_cjk, n_strip, n_lower, pre):
    """Properties as the real tokenizers library implements them."""
    ch = chr(cp)
    flags = 0
    out = n_clean.normalize_str(ch)
    if out == "":
        flags |= K_REMOVE
    elif out == " ":
        flags |= K_CLEAN_SPACE
    elif out != ch:
        raise SystemExit(f"unexpected clean_text output for U+{cp:04X}: {out!r}")
    if n_cjk.normalize_str(ch) == f" {ch} ":
        flags |= K_CJK
    pieces = pre.pre_tokenize_str("a" + ch + "a")
    if len(pieces) == 2:
        flags |= K_PRE_SPACE
    elif len(pieces) == 3:
        flags |= K_PUNCT
    return flags, n_strip.normalize_str(ch), n_lower.normalize_str(ch)


def hangul_nfd(cp):
    s = cp - HANGUL_FIRST
    l, v, t = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return [l, v] + ([t] if t != 0x11A7 else [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    n_clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                             lowercase=False)
    n_cjk = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False,
                           lowercase=False)
    n_strip = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                             lowercase=False)
    n_lower = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False,
                             lowercase=True)
    pre = BertPreTokenizer()

    flags_of = [0] * MAX_CP
    strip_map = {}  # cp -> list of cps (non-empty, != [cp])
    lower_single = {}  # cp -> cp
    lower_multi = {}  # cp -> list of cps
    diffs = {"flags": [], "strip": [], "lower": []}
    fffd = None
    for cp in range(MAX_CP):
        if is_surrogate(cp):
            continue  # handled below: invalid UTF-8 decodes to U+FFFD
        flags, strip, lower = probe(cp, n_clean, n_cjk, n_strip, n_lower, pre)
        uflags, ustrip, ulower = from_unicodedata(cp)
        if flags != uflags:
            diffs["flags"].append(cp)
        if strip != ustrip:
            diffs["strip"].append(cp)
        if lower != ulower:
            diffs["lower"].append(cp)
        ch = chr(cp)
        if strip == "":
            flags |= K_STRIP_DROP
        elif strip != ch:
            flags |= K_HAS_STRIP
            if HANGUL_FIRST <= cp <= HANGUL_LAST:
                assert [ord(c) for c in strip] == hangul_nfd(cp), hex(cp)
            else:
                strip_map[cp] = [ord(c) for c in strip]
        if lower != ch:
            flags |= K_HAS_LOWER
            if len(lower) == 1:
                lower_single[cp] = ord(lower)
            else:
                lower_multi[cp] = [ord(c) for c in lower]
        flags_of[cp] = flags
        if cp == 0xFFFD:
            fffd = flags
    for cp in range(0xD800, 0xE000):
        flags_of[cp] = fffd

    for name, cps in diffs.items():
        ex = ", ".join(f"U+{c:04X}" for c in cps[:8])
        print(f"{name}: tokenizers differs from unicodedata {unicodedata.unidata_version} on "
              f"{len(cps)} code points{(' (e.g. ' + ex + ')') if cps else ''}; tokenizers wins")

    # Flag ranges.
    ranges = []
    for cp in range(MAX_CP):
        if not ranges or ranges[-1][1] != flags_of[cp]:
            ranges.append((cp, flags_of[cp]))

    # Lower runs: cp in [start, start + count*stride) stepping by stride maps to cp + delta.
    runs = []
    for cp in sorted(lower_single):
        d = lower_single[cp] - cp
        if runs:
            start, count, stride, delta = runs[-1]
            last = start + (count - 1) * stride
            if delta == d and count == 1 and cp - last in (1, 2):
                runs[-1] = (start, 2, cp - last, delta)
                continue
            if delta == d and count > 1 and cp - last == stride:
                runs[-1] = (start, count + 1, stride, delta)
                continue
        runs.append((cp, 1, 1, d))
    multi_pool = []
    multi = []
    for cp in sorted(lower_multi):
        multi.append((cp, len(multi_pool), len(lower_multi[cp])))
        multi_pool += lower_multi[cp]

    # Strip map: single results inline, longer ones in a pool (value = 0x80000000 | off << 8 | len).
    strip_keys, strip_vals, strip_pool = [], [], []
    for cp in sorted(strip_map):
        seq = strip_map[cp]
        strip_keys.append(cp)
        if len(seq) == 1:
            strip_vals.append(seq[0])
        else:
            strip_vals.append(0x80000000 | (len(strip_pool) << 8) | len(seq))
            strip_pool += seq

    def arr(vals, per_line=12):
        lines = []
        for i in range(0, len(vals), per_line):
            lines.append("    " + ",".join(str(v) for v in vals[i:i + per_line]) + ",")
        return "\n".join(lines)

    out = []
    out.append("// GENERATED by tools/reference/make_tokenizer_unicode_tables.py -- do not edit.")
    out.append(f"// Unicode data as tokenizers {tokenizers.__version__} (BertNormalizer, "
               f"BertPreTokenizer) sees it; cross-checked")
    out.append(f"// against Python unicodedata {unicodedata.unidata_version}. "
               f"See src/text/unicode_tables.h.")
    out.append('#include "unicode_tables.h"\n')
    out.append("namespace accel::text::detail {\n")
    out.append(f"const int kFlagRangeCount = {len(ranges)};")
    out.append("const uint32_t kFlagRangeStart[] = {\n" + arr([r[0] for r in ranges]) + "\n};")
    out.append("const uint8_t kFlagRangeFlags[] = {\n" + arr([r[1] for r in ranges], 24) + "\n};\n")
    out.append(f"const int kLowerRunCount = {len(runs)};")
    out.append("const LowerRun kLowerRuns[] = {\n" + "\n".join(
        f"    {{{s},{c},{st},{d}}}," for s, c, st, d in runs) + "\n};")
    out.append(f"const int kLowerMultiCount = {len(multi)};")
    out.append("const MultiMap kLowerMulti[] = {\n" + "\n".join(
        f"    {{{cp},{off},{n}}}," for cp, off, n in multi) + "\n};")
    out.append("const uint32_t kLowerMultiPool[] = {\n" + arr(multi_pool) + "\n};\n")
    out.append(f"const int kStripCount = {len(strip_keys)};")
    out.append("const uint32_t kStripKeys[] = {\n" + arr(strip_keys) + "\n};")
    out.append("const uint32_t kStripVals[] = {\n" + arr(strip_vals) + "\n};")
    out.append("const uint32_t kStripPool[] = {\n" + arr(strip_pool or [0]) + "\n};\n")
    out.append("}  // namespace accel::text::detail")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.out}: {len(ranges)} flag ranges, {len(runs)} lower runs, "
          f"{len(multi)} multi lower, {len(strip_keys)} strip entries, pool {len(strip_pool)}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
