#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (small valid and tricky inputs).

Run from the repository root: python3 tests/fuzz/make_corpus.py. Deterministic; standard library
only. The committed files are its output plus a few copies of committed fixtures.
"""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")
REPO = os.path.dirname(os.path.dirname(ROOT))


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st(header, data=b"", declared=None, pad=True):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    n = len(h) if declared is None else declared
    return struct.pack("<Q", n) + h + data


def fnv1a(b):
    h = 1469598103934665603
    for c in b:
        h ^= c
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def safetensors():
    t = "fuzz_safetensors"
    shutil.copy(os.path.join(REPO, "tests/fixtures/bert/safetensors/dtypes.safetensors"),
                os.path.join(CORPUS, t, "dtypes.safetensors")) if os.path.isdir(os.path.join(CORPUS, t)) else None
    put(t, "empty_header", st({}))
    put(t, "one_f32", st({"__metadata__": {"format": "pt"},
                          "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, bytes(range(16))))
    put(t, "two_dtypes", st({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},
                             "b": {"dtype": "BF16", "shape": [3], "data_offsets": [8, 14]},
                             "c": {"dtype": "BOOL", "shape": [], "data_offsets": [14, 15]}}, bytes(15)))
    put(t, "zero_dim", st({"z": {"dtype": "F16", "shape": [0, 5], "data_offsets": [0, 0]}}))
    put(t, "misaligned", st({"x": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8), pad=False))
    put(t, "overlap", st({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                          "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, bytes(6)))
    put(t, "duplicate", st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                           b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "huge_shape", st({"h": {"dtype": "F32", "shape": [4294967296, 4294967296, 0],
                                   "data_offsets": [0, 0]}}))
    put(t, "length_past_end", st({}, declared=1 << 62))
    put(t, "negative_shape", st({"n": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"\0"))
    put(t, "nested", st(b"{" + b'"a":' * 1 + b"[" * 200 + b"]" * 200 + b"}"))


def config():
    t = "fuzz_config"
    src = os.path.join(REPO, "tests/fixtures/configs")
    os.makedirs(os.path.join(CORPUS, t), exist_ok=True)
    for name in sorted(os.listdir(src)):
        if name.endswith((".yaml", ".json")):
            shutil.copy(os.path.join(src, name), os.path.join(CORPUS, t, name))
    put(t, "minimal.yaml", "distributed_type: NO\n")
    put(t, "passthrough.yaml", "distributed_type: FSDP\nfsdp_config:\n  fsdp_sharding_strategy: 1\n"
        "  list: [a, 'b', \"c\\u00e9\", {x: y}]\ndowncast_bf16: 'no'\ntpu_env: []\n")
    put(t, "sagemaker.yaml", "compute_environment: AMAZON_SAGEMAKER\ndistributed_type: DATA_PARALLEL\n"
        "region: us-east-1\nbase_job_name: 'x: y'\n")
    put(t, "types.yaml", "distributed_type: MULTI_CPU\nnum_processes: 0x10\nmachine_rank: +0\n"
        "num_machines: 1_0\nmain_process_port: ~\ngpu_ids: 0, 1,2,\nuse_cpu: yes\ndebug: 'true'\n")
    put(t, "anchors.yaml", "base: &b MULTI_GPU\ndistributed_type: *b\n<<: {x: 1}\n")
    put(t, "legacy_dynamo.yaml", "distributed_type: NO\ndynamo_backend: INDUCTOR\nfp16: true\n")
    put(t, "weird_strings.yaml", "distributed_type: NO\nmain_process_ip: \"\\x01\\u2028\\U0001F600 #\"\n"
        "main_training_function: '- x'\nrdzv_backend: '2001-01-01'\n")
    put(t, "flow.json", '{"distributed_type": "MULTI_CPU", "num_processes": 2, "dynamo_config": {}}')


def tokenizer():
    t = "fuzz_tokenizer"
    texts = ["The movie wasn't good.", "unbelievable!!! PLAYERS played", "café naïve ß ǅ ﬁ",
             "中文日本語 한국어 😀", "[CLS] a [MASK] b [SEP]", "\x00\x01\t\r\n\u00a0\u2028 x",
             "a" * 150, "e\u0301 o\u0308 \ufffd", "##s ## ###"]
    for i, text in enumerate(texts):
        put(t, "text_%d" % i, bytes([i % 5, (i * 37) & 0xFF]) + text.encode())
    put(t, "invalid_utf8", b"\x00\x00" + b"ab\xff\xfe\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82 c")
    put(t, "pair", b"\x01\x10first text here\n--\nsecond one, longer: unbelievable")
    put(t, "batch", b"\x03\x20one\n--\ntwo words\n--\n\n--\nthree words here")
    put(t, "decode_ids", b"\x05\x03" + struct.pack("<12h", 2, 20, 13, 3, 0, -1, 500, 1, 4, 16, 17, 3))
    tj = {"model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                    "max_input_chars_per_word": 100,
                    "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "the": 5,
                              "movie": 6, "##s": 7, "good": 8, "un": 9, "##believ": 10, "##able": 11}},
          "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                         "strip_accents": None, "lowercase": True},
          "pre_tokenizer": {"type": "BertPreTokenizer"},
          "added_tokens": [{"id": 0, "content": "[PAD]", "special": True},
                           {"id": 1, "content": "[UNK]", "special": True},
                           {"id": 2, "content": "[CLS]", "special": True},
                           {"id": 3, "content": "[SEP]", "special": True},
                           {"id": 4, "content": "[MASK]", "special": True}],
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}},
                                        {"SpecialToken": {"id": "[SEP]", "type_id": 0}}]}}
    put(t, "tokenizer_json", b"\x06\x00" + json.dumps(tj).encode())
    tj2 = dict(tj, post_processor={"type": "BertProcessing", "cls": ["[CLS]", 2], "sep": ["[SEP]", 3]})
    del tj2["added_tokens"]
    put(t, "tokenizer_json_bert_processing", b"\x06\x01" + json.dumps(tj2).encode())
    put(t, "vocab_lines", b"\x07\x00[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nmovie\n##s\n\xff\xfe\n\n##\ncaf\xc3\xa9 \r\n")


def text_data():
    t = "fuzz_text_data"
    put(t, "csv_basic", b"\x00\x00text,label\n\"hello, world\",1\nbad movie,neg\n\"multi\nline \"\"q\"\"\",0\r\n")
    put(t, "csv_bom_semicolon", b"\x00\x01\xef\xbb\xbftext;label\nfoo;pos\n\nbar;-3\n")
    put(t, "csv_names", b"\x00\x0creview,sentiment,extra\nx,Neutral,1\ny,POS,2\n")
    put(t, "csv_unclosed", b"\x00\x00text,label\n\"never closed,1\n")
    put(t, "csv_bad_label", b"\x00\x00text,label\nx,99999999999999999999\ny,+\n")
    put(t, "jsonl_basic", b'\x01\x00{"text": "a", "label": 1}\n\n{"text": "b\\u00e9", "label": "neg"}\n'
        b'{"text": "c", "label": true}\n')
    put(t, "jsonl_bad", b'\x01\x00{"text": "a", "label": 1.5}\n[1,2]\n{"text": 3}\n')
    put(t, "imdb_basic", b"\x02\x00" + b"\n--\n".join([b"0_3.txt", b"bad film", b"1_9.txt", b"great film",
                                                      b"2_1.txt", b"awful", b"3_10.txt", b"superb",
                                                      b"10_2.txt", b"meh", b"4_8.txt", b"nice"]))
    put(t, "imdb_names", b"\x02\x26" + b"\n--\n".join([b"18446744073709551615_1.txt", b"x", b"-1_-1.txt", b"y",
                                                      b"notes.txt", b"z", b"7_7.txt.txt", b"w",
                                                      b"01_02.txt", b"v"]))


def manifest():
    t = "fuzz_manifest"
    members = {"model.safetensors": b"accel-fuzz\n", "optimizer.json": b"{}", "scheduler.json": b""}
    files = {k: {"size": len(v), "checksum": fnv1a(v)} for k, v in members.items()}
    base = {"format_version": 1, "world_size": 1, "mixed_precision": "no", "step": 3}
    put(t, "valid.json", json.dumps(dict(base, files=files), indent=1))
    put(t, "valid_subset.json", json.dumps(dict(base, files={"optimizer.json": files["optimizer.json"]})))
    put(t, "escape_parent.json", json.dumps(dict(base, files={"../secret": {"size": 7, "checksum": fnv1a(b"secret\n")}})))
    put(t, "escape_absolute.json", json.dumps(dict(base, files={"/etc/hostname": {"size": 1, "checksum": "0"}})))
    put(t, "escape_sub.json", json.dumps(dict(base, files={"sub/x": {"size": 1, "checksum": fnv1a(b"x")}})))
    put(t, "dot.json", json.dumps(dict(base, files={".": {"size": 0, "checksum": ""}, "sub": {"size": 0}})))
    put(t, "bad_types.json", json.dumps(dict(base, files={"model.safetensors": {"size": "11", "checksum": 5}})))
    put(t, "not_object_info.json", json.dumps(dict(base, files={"model.safetensors": [11]})))
    put(t, "wrong_version.json", json.dumps(dict(base, format_version=2.5, files={})))
    put(t, "long_name.json", json.dumps(dict(base, files={"a" * 300: {"size": 0, "checksum": ""}})))
    return files


def dictionaries(files):
    d = os.path.join(ROOT, "dicts")
    os.makedirs(d, exist_ok=True)
    json_tokens = ['"{"', '"}"', '"["', '"]"', '":"', '","', '"\\""', '"true"', '"false"', '"null"',
                   '"-1"', '"0"', '"1e999"', '"18446744073709551615"', '"9223372036854775808"',
                   '"\\\\u0000"', '"\\\\ud800"']
    st_tokens = ['"__metadata__"', '"dtype"', '"shape"', '"data_offsets"', '"format"', '"pt"'] + \
        ['"%s"' % n for n in ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32",
                              "U32", "F32", "C64", "F64", "I64", "U64", "F4"]]
    with open(os.path.join(d, "json.dict"), "w") as f:
        f.write("# JSON and safetensors header tokens (libFuzzer -dict).\n" + "\n".join(json_tokens + st_tokens) + "\n")
    yaml_tokens = ['": "', '"\\x0a"', '"  "', '"- "', '"? "', '"{"', '"}"', '"["', '"]"', '"&a "', '"*a"',
                   '"!!str "', '"!!int "', '"!!map"', '"<<: "', '"|"', '">-"', '"\'"', '"~"', '"null"', '"yes"',
                   '"no"', '"on"', '"0x1F"', '"0o17"', '"1_000"', '"1:30"', '".inf"', '"2001-12-14"', '"---"',
                   '"..."', '"%YAML 1.1"', '"#"']
    keys = ["compute_environment", "distributed_type", "mixed_precision", "use_cpu", "debug", "num_processes",
            "num_machines", "machine_rank", "gpu_ids", "main_process_ip", "main_process_port", "rdzv_backend",
            "same_network", "main_training_function", "enable_cpu_affinity", "gradient_accumulation_steps",
            "fp16", "dynamo_backend", "fsdp_config", "deepspeed_config", "dynamo_config", "downcast_bf16",
            "tpu_env", "region", "LOCAL_MACHINE", "AMAZON_SAGEMAKER", "MULTI_CPU", "MULTI_GPU", "NO", "FSDP",
            "DATA_PARALLEL", "bf16", "fp8", "all", "static"]
    with open(os.path.join(d, "yaml.dict"), "w") as f:
        f.write("# YAML syntax and accel/Accelerate config keys (libFuzzer -dict).\n" +
                "\n".join(yaml_tokens + ['"%s"' % k for k in keys]) + "\n")
    tok = ['"[CLS]"', '"[SEP]"', '"[PAD]"', '"[UNK]"', '"[MASK]"', '"##"', '"\\xc3\\xa9"', '"e\\xcc\\x81"',
           '"\\xe4\\xb8\\xad"', '"\\xf0\\x9f\\x98\\x80"', '"\\xef\\xbf\\xbd"', '"\\xe2\\x80\\xa8"', '"\\xc2\\xa0"',
           '"\\x0a--\\x0a"', '"\\"vocab\\""', '"\\"added_tokens\\""', '"\\"post_processor\\""',
           '"\\"normalizer\\""', '"\\"BertProcessing\\""', '"\\"TemplateProcessing\\""', '"\\"SpecialToken\\""',
           '"\\"continuing_subword_prefix\\""', '"\\"max_input_chars_per_word\\""', '"\\"unk_token\\""',
           '"\\"id\\""', '"\\"content\\""', '"\\"special\\""', '"\\"WordPiece\\""', '"\\"BertNormalizer\\""']
    with open(os.path.join(d, "tokenizer.dict"), "w") as f:
        f.write("# Tokenizer tokens, tricky UTF-8 and tokenizer.json keys (libFuzzer -dict).\n" + "\n".join(tok) + "\n")
    td = ['"\\x0a--\\x0a"', '"\\"\\""', '"\\x0d\\x0a"', '"\\xef\\xbb\\xbf"', '"text"', '"label"', '"review"',
          '"sentiment"', '"neg"', '"pos"', '"Neutral"', '"negative"', '"true"', '"_10.txt"', '".txt"',
          '"18446744073709551615"', '"9223372036854775807"', '"{\\"text\\": "', '", \\"label\\": "']
    with open(os.path.join(d, "text_data.dict"), "w") as f:
        f.write("# CSV/JSONL syntax, label spellings, aclImdb names (libFuzzer -dict).\n" + "\n".join(td) + "\n")
    mf = ['"\\"files\\""', '"\\"format_version\\""', '"\\"size\\""', '"\\"checksum\\""', '"../"', '"/"',
          '"\\"..\\""', '"\\".\\""', '"sub/x"', '"\\\\u0000"', '"model.safetensors"', '"optimizer.json"',
          '"scheduler.json"', '"secret"', '"accel_state.json"'] + \
         ['"%s"' % v["checksum"] for v in files.values()] + ['"%s"' % fnv1a(b"secret\n"), '"%s"' % fnv1a(b"x")]
    with open(os.path.join(d, "manifest.dict"), "w") as f:
        f.write("# State-folder manifest keys, member names and their checksums (libFuzzer -dict).\n" +
                "\n".join(mf) + "\n")


if __name__ == "__main__":
    os.makedirs(os.path.join(CORPUS, "fuzz_safetensors"), exist_ok=True)
    safetensors()
    config()
    tokenizer()
    text_data()
    dictionaries(manifest())
