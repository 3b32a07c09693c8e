"""Rows/s of `tfgen score` against a bare loop calling the same signature on the same batches.

    .venv/bin/python bench/score_throughput.py [--model saved_models/digits_realnvp] [--rows 20000]

Both sides load the export once, in this process. The bare loop calls the `log_prob`
signature on the batches of an in-memory array and keeps the outputs; `tfgen score`
(`score_file`) reads the same rows from an .npy file, checks each, prefetches batches
through tf.data, writes resumable shards and joins them into a Parquet file. Each side
runs `--repeats` times, alternating; the best time of each is reported, and their
ratio (target: tfgen score >= 0.9x the bare loop). Then, in the same run, the Beam path
(`tfgen.scoring.beam.score_with_beam`, DirectRunner) once with 1 worker (in-memory) and
once with 2 (multi_processing); their times include the pipeline's start-up and, for
multi_processing, each worker process importing TensorFlow and loading the model.
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
    parser.add_argument("--no-beam", action="store_true", help="skip the Beam DirectRunner rows")
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
        if not args.no_beam:
            from tfgen.scoring.beam import score_with_beam

            for label, options in (("Beam DirectRunner, 1 worker", ["--direct_num_workers=1"]),
                                   ("Beam DirectRunner, 2 workers (multi_processing)",
                                    ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])):
                start = time.perf_counter()
                counts = score_with_beam(scorer, os.path.join(tmp, "x.npy"), os.path.join(tmp, "beam.parquet"),
                                         "DirectRunner", options, batch_size=args.batch_size)
                best[label] = time.perf_counter() - start
                assert counts["rows"] == args.rows
    os.system("uptime")
    print(f"{os.path.basename(args.model.rstrip('/'))}: {args.rows} rows, batch {args.batch_size}, "
          f"best of {args.repeats}")
    print("| path | rows/s | x bare loop |\n|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {args.rows / seconds:.0f} | {best['bare loop'] / seconds:.2f} |")


if __name__ == "__main__":
    main()
