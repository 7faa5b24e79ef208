#!/usr/bin/env python3
"""Reads TensorBoard event files with TensorBoard's own reader and prints them as JSON.

Used by tests/unit/tracking/tensorboard_test.cpp to check that the event files accel writes are
what TensorBoard itself reads. Needs the reference venv (scripts/setup-reference.sh):

    .venv-ref/bin/python tools/reference/read_tensorboard.py <run folder> [--out result.json]

Output: {"scalars": {tag: [[step, value], ...]}, "texts": {tag: [[step, text], ...]},
         "text_plugin": {tag: plugin_name}, "file_version": "brain.Event:2", "num_files": N}
Scalars come from EventAccumulator.Scalars (float32 values as TensorBoard stores them); texts
from EventAccumulator.Tensors (DT_STRING tensors), as the text plugin reads them.
"""
import argparse
import glob
import json
import os
import sys

from tensorboard.backend.event_processing import event_accumulator, event_file_loader


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", help="folder holding events.out.tfevents.* files")
    ap.add_argument("--out", help="write the JSON here instead of stdout")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.run_dir, "events.out.tfevents.*")))
    if not files:
        sys.exit(f"read_tensorboard.py: no events.out.tfevents.* files in {args.run_dir}")

    # The first event of each file must carry the file version; read it with TensorBoard's
    # loader (which checks every record's CRC and raises on a mismatch).
    first = next(iter(event_file_loader.EventFileLoader(files[0]).Load()))
    acc = event_accumulator.EventAccumulator(
        args.run_dir, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()

    out = {"file_version": first.file_version, "num_files": len(files),
           "scalars": {}, "texts": {}, "text_plugin": {}}
    for tag in tags.get("scalars", []):
        out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags.get("tensors", []):
        events = acc.Tensors(tag)
        out["texts"][tag] = [[e.step, b"".join(e.tensor_proto.string_val).decode("utf-8")]
                             for e in events]
        meta = acc.SummaryMetadata(tag)
        out["text_plugin"][tag] = meta.plugin_data.plugin_name
    text = json.dumps(out, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
