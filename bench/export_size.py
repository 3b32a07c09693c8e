"""SavedModel size and load time: old exports against new ones, side by side, one run.

    python bench/export_size.py --old /tmp/saved_models_before --new saved_models
    python bench/export_size.py --old OLD --new NEW --rounds 3 --models two_moons_nsf

For every model directory present under both `--old` and `--new` (newest version of
each), it prints

1. bytes: saved_model.pb and the whole version directory, new/old;
2. time: `tf.saved_model.load` and then the first `sample` call on 4 rows (where the
   runtime optimizes the graph), each in a fresh Python process that has imported
   TensorFlow before the clock starts; old and new alternate for `--rounds` rounds
   (old new old new ...) so drifting machine load hits both alike; medians and new/old;
3. where the bytes go in each graph (old and new): node names, input references,
   `_output_shapes` attributes, constant values, function signatures, the MetaGraph's
   own nodes, the object graph;
4. what each remedy saves, cumulatively on the old graph: the passes of
   `tfgen.export.compact` one after another; the last row is the new export, whose
   only other difference is that each computation is traced once and shared between
   signatures (tfgen.export.signatures), so the gap between the last two rows is that.

Only ratios from one run are meant to be compared (bench/common.py).
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median  # noqa: E402

_CHILD = """
import json, sys, time
import numpy as np
import tensorflow as tf
path = sys.argv[1]
start = time.perf_counter()
loaded = tf.saved_model.load(path)
loaded_at = time.perf_counter()
sample = loaded.signatures["sample"]
specs = sample.structured_input_signature[1]
feeds = {"seed": tf.range(4, dtype=tf.int64), "temperature": tf.ones([4])}
if "condition" in specs:
    feeds["condition"] = tf.zeros([4], tf.int32)
sample(**feeds)["samples"].numpy()
print(json.dumps({"load": loaded_at - start, "first_sample": time.perf_counter() - loaded_at}))
"""


def newest_version(base):
    from tfgen.export.reader import resolve_version

    return resolve_version(base)


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def read_saved_model(path):
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        return saved_model_pb2.SavedModel.FromString(f.read())


def timed_load(path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True, env=env,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def breakdown(saved_model):
    """Bytes of a SavedModel proto by what they hold (approximate: field framing aside)."""
    meta_graph = saved_model.meta_graphs[0]
    functions = meta_graph.graph_def.library.function
    nodes = [n for f in functions for n in f.node_def]
    return {
        "total": saved_model.ByteSize(),
        "function nodes": len(nodes),
        "node names": sum(len(n.name) for n in nodes),
        "input references": sum(len(i) for n in nodes for i in n.input),
        "_output_shapes": sum(n.attr["_output_shapes"].ByteSize() for n in nodes if "_output_shapes" in n.attr),
        "constant values": sum(n.attr["value"].ByteSize() for n in nodes if n.op == "Const"),
        "function signatures": sum(f.signature.ByteSize() + sum(a.ByteSize() for a in f.arg_attr.values())
                                   for f in functions),
        "MetaGraph nodes": sum(n.ByteSize() for n in meta_graph.graph_def.node),
        "object graph": meta_graph.object_graph_def.ByteSize(),
    }


def remedies(old_proto, new_proto):
    """[(remedy, bytes)]: the old graph with each compaction pass added in turn, then the new one."""
    from tfgen.export.compact import PASSES, compact_meta_graphs

    rows = [("old export", old_proto.ByteSize())]
    applied = []
    for name in PASSES:
        applied.append(name)
        proto = type(old_proto).FromString(old_proto.SerializeToString())
        compact_meta_graphs(proto, applied)
        rows.append((f"+ {name}", proto.ByteSize()))
    rows.append(("new export (+ each computation traced once, shared)", new_proto.ByteSize()))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="directory of old model directories (e.g. a copy of saved_models/)")
    parser.add_argument("--new", default="saved_models", help="directory of new model directories")
    parser.add_argument("--models", nargs="+", help="model names (default: every one present in both)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved load rounds per side")
    args = parser.parse_args()
    names = args.models or sorted(set(os.listdir(args.old)) & set(os.listdir(args.new)) - {".", ".."})
    print(f"# python bench/export_size.py --old {args.old} --new {args.new} --rounds {args.rounds}")
    print(f"# start: {machine_line()}", flush=True)
    started = time.perf_counter()
    sizes, times, details, steps = [], [], [], []
    for name in names:
        old, new = newest_version(os.path.join(args.old, name)), newest_version(os.path.join(args.new, name))
        old_pb, new_pb = (os.path.getsize(os.path.join(p, "saved_model.pb")) for p in (old, new))
        old_dir, new_dir = dir_bytes(old), dir_bytes(new)
        sizes.append([name, f"{old_pb:,}", f"{new_pb:,}", f"{new_pb / old_pb:.3f}",
                      f"{old_dir:,}", f"{new_dir:,}", f"{new_dir / old_dir:.3f}"])
        runs = interleave({"old": lambda: timed_load(old), "new": lambda: timed_load(new)}, args.rounds)
        row = [name]
        for key in ("load", "first_sample"):
            o, n = (median([r[key] for r in runs[side]]) for side in ("old", "new"))
            row += [f"{o:.2f}", f"{n:.2f}", f"{n / o:.2f}"]
        times.append(row)
        print(f"# {name}: pb {old_pb:,} -> {new_pb:,} bytes; load {row[1]} -> {row[2]} s", flush=True)
        old_proto, new_proto = read_saved_model(old), read_saved_model(new)
        for label, proto in (("old", old_proto), ("new", new_proto)):
            parts = breakdown(proto)
            details.append([name, label, *(f"{v:,}" for v in parts.values())])
        detail_headers = ["model", "export", *parts]
        steps += [[name, remedy, f"{size:,}", f"{size / old_pb:.3f}"] for remedy, size in remedies(old_proto, new_proto)]
    print(f"# end:   {machine_line()}  elapsed={time.perf_counter() - started:.0f}s")
    print()
    print(format_table(["model", "old saved_model.pb", "new", "new/old", "old version dir", "new", "new/old"],
                       sizes))
    print()
    print(format_table(["model", "old load s", "new load s", "new/old", "old first sample s", "new", "new/old"],
                       times))
    print(f"\nMedians over {args.rounds} interleaved rounds, one fresh process per load.\n")
    print(format_table(detail_headers, details, align=["l", "l"] + ["r"] * (len(detail_headers) - 2)))
    print()
    print(format_table(["model", "remedy (cumulative)", "saved_model.pb bytes", "of old"], steps,
                       align=["l", "l", "r", "r"]))


if __name__ == "__main__":
    main()
