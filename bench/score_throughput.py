"""Rows/s of `tfgen score` against a bare loop calling the same signature on the same batches.

    .venv/bin/python bench/score_throughput.py [--model saved_models/digits_realnvp] [--rows 20000]

Both sides load the export once, in this process. The bare loop calls the `log_prob`
signature on the batches of an in-memory array and keeps the outputs; `tfgen score`
(`score_file`) reads the same rows from an .npy file, checks each, prefetches batches
through tf.data, writes resumable shards and joins them into a Parquet file. Each side
runs `--repeats` times, alternating; the best time of each is reported, and their
ratio (target: tfgen score >= 0.9x the bare loop).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfgen.backend import tf  # noqa: E402
from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.scoring.score import LocalScorer, score_file  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "saved_models", "digits_realnvp"))
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    digits = load_dataset({"name": "digits", "seed": 0}).splits["train"].x.astype(np.float32)
    x = np.resize(digits, (args.rows, *digits.shape[1:]))
    scorer = LocalScorer(args.model)
    function = scorer._fn
    batches = [x[i:i + args.batch_size] for i in range(0, len(x), args.batch_size)]

    def bare():
        kept = []
        for batch in batches:
            kept.append(function(x=tf.constant(batch))["log_prob"].numpy())
        return np.concatenate(kept)

    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "x.npy"), x)
        bare()  # warm both paths once
        score_file(scorer, os.path.join(tmp, "x.npy"), os.path.join(tmp, "warm.parquet"), args.batch_size,
                   progress=False)
        times = {"bare loop": [], "tfgen score": []}
        for repeat in range(args.repeats):
            start = time.perf_counter()
            bare()
            times["bare loop"].append(time.perf_counter() - start)
            start = time.perf_counter()
            score_file(scorer, os.path.join(tmp, "x.npy"), os.path.join(tmp, f"out{repeat}.parquet"),
                       args.batch_size, progress=False)
            times["tfgen score"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    print(f"{os.path.basename(args.model.rstrip('/'))}: {args.rows} rows, batch {args.batch_size}, "
          f"best of {args.repeats}")
    print("| path | rows/s | x bare loop |\n|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {args.rows / seconds:.0f} | {best['bare loop'] / seconds:.2f} |")


if __name__ == "__main__":
    main()
