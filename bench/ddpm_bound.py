"""The DDPM's exported `log_prob` (its variational bound) at a few batch sizes: one export
against another, interleaved in one process, wall and CPU seconds per call and ratios.

Compares e.g. the shipped digits_ddpm before and after the bound took chunks of
timesteps per network pass (commit 7d5794c):

    mkdir -p /tmp/before && git archive a04befb saved_models/digits_ddpm | tar -x -C /tmp/before
    python bench/ddpm_bound.py /tmp/before/saved_models/digits_ddpm/1 saved_models/digits_ddpm/1
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import format_table, interleave, machine_line, median  # noqa: E402

import tensorflow as tf  # noqa: E402


def timed(signature, inputs):
    wall, cpu = time.perf_counter(), time.process_time()
    signature(**inputs)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="version directory of the first export")
    parser.add_argument("after", help="version directory of the second export")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 4, 16], help="batch sizes (default 1 4 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per export and batch size")
    args = parser.parse_args(argv)
    for path in (args.before, args.after):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            parser.error(f"{path} is not a SavedModel version directory (no saved_model.pb)")
    print(machine_line())
    signatures = {name: tf.saved_model.load(path).signatures["log_prob"]
                  for name, path in (("before", args.before), ("after", args.after))}
    rows_out = []
    for rows in args.rows:
        x = np.random.default_rng(0).integers(0, 17, [rows, 8, 8, 1]).astype(np.float32)
        inputs = {"x": tf.constant(x)}
        if "condition" in signatures["before"].structured_input_signature[1]:
            inputs["condition"] = tf.zeros([rows], tf.int32)
        for signature in signatures.values():
            signature(**inputs)  # first call: instantiation
        times = interleave({name: (lambda s=signature: timed(s, inputs)) for name, signature in signatures.items()},
                           args.repeats)
        wall = {name: median([t[0] for t in ts]) for name, ts in times.items()}
        cpu = {name: median([t[1] for t in ts]) for name, ts in times.items()}
        rows_out.append([rows, f"{wall['before']:.2f}", f"{wall['after']:.2f}", f"{wall['before'] / wall['after']:.2f}x",
                         f"{cpu['before']:.2f}", f"{cpu['after']:.2f}", f"{cpu['before'] / cpu['after']:.2f}x"])
    print(format_table(["rows", "before wall s", "after wall s", "speed-up", "before CPU s", "after CPU s",
                        "CPU ratio"], rows_out))
    print(machine_line())


if __name__ == "__main__":
    main()
