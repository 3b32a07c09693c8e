"""Rows/s of `tfgen score` against a bare loop calling the same signature on the same batches.

    .venv/bin/python bench/score_throughput.py [--model saved_models/digits_realnvp] [--rows 5000]

Both sides load the export once, in this process, and do the same job from the same
.npy file to a Parquet file of the same scores: the bare loop loads the array
(`np.load`), calls the `log_prob` signature on each `--batch-size` slice and writes
index, log_prob and bits_per_dim with pyarrow; `tfgen score` (`score_file`) reads the
rows chunk by chunk, checks each, prefetches batches through tf.data, writes resumable
shards and joins them into the Parquet file. Each side runs `--repeats` times,
interleaved (bare, score, score, bare, ...), so a change in the machine's load hits both.

Reported per side: the best wall time's rows/s, the median ratio of adjacent pairs'
wall times (target: tfgen score >= 0.9x the bare loop), and the CPU seconds per 1000
rows (`time.process_time`, every thread of this process): on a machine shared with
other work the wall times swing with the load, the CPU seconds much less.

Then, in the same run, the Beam path (`tfgen.scoring.beam.score_with_beam`,
DirectRunner) with 1 worker (in-memory) and with 2 (multi_processing), each on the
input and on its first 8 rows: the 8-row run is the pipeline's fixed start-up (for
multi_processing: the worker processes starting, importing TensorFlow and loading the
model), the difference the per-row rate. Their CPU seconds include the worker
processes' (`resource.getrusage(RUSAGE_CHILDREN)`). `--startup` also times one fresh
process importing TensorFlow and loading the export, the part of that start-up each
worker pays.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfgen.backend import tf  # noqa: E402
from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.scoring.score import LocalScorer, score_file  # noqa: E402

#: Rows of the Beam runs that measure only the pipeline's start-up.
STARTUP_ROWS = 8


def _cpu_seconds():
    """CPU seconds of this process (every thread) and of its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(run):
    """(wall seconds, CPU seconds) of `run()`."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    run()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def bare_loop(function, x_path, out_path, batch_size):
    """The loop a user would write: the array, the signature per slice, a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.load(x_path)
    log_prob, bits_per_dim = [], []
    for start in range(0, len(x), batch_size):
        out = function(x=tf.constant(x[start:start + batch_size]))
        log_prob.append(out["log_prob"].numpy())
        bits_per_dim.append(out["bits_per_dim"].numpy())
    pq.write_table(pa.table({"index": np.arange(len(x)), "log_prob": np.concatenate(log_prob).astype(np.float64),
                             "bits_per_dim": np.concatenate(bits_per_dim).astype(np.float64)}), out_path)


def startup_seconds(model):
    """Wall seconds of a fresh process importing TensorFlow, then loading the export."""
    script = ("import time; t = time.perf_counter(); import tensorflow as tf; i = time.perf_counter() - t; "
              f"tf.saved_model.load({model!r}); print(i, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()[-2:]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "saved_models", "digits_realnvp"))
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=4, help="runs of each local side, interleaved")
    parser.add_argument("--no-beam", action="store_true", help="skip the Beam DirectRunner rows")
    parser.add_argument("--startup", action="store_true",
                        help="also time a fresh process importing TensorFlow and loading the model")
    args = parser.parse_args(argv)
    digits = load_dataset({"name": "digits", "seed": 0}).splits["train"].x.astype(np.float32)
    x = np.resize(digits, (args.rows, *digits.shape[1:]))
    scorer = LocalScorer(args.model)
    function = scorer._fn
    with tempfile.TemporaryDirectory() as tmp:
        x_path = os.path.join(tmp, "x.npy")
        np.save(x_path, x)
        np.save(os.path.join(tmp, "head.npy"), x[:STARTUP_ROWS])
        sides = {
            "bare loop": lambda: bare_loop(function, x_path, os.path.join(tmp, "bare.parquet"), args.batch_size),
            "tfgen score": lambda: score_file(scorer, x_path, os.path.join(tmp, "score.parquet"),
                                              args.batch_size, progress=False),
        }
        for run in sides.values():  # warm both paths once
            run()
        runs = {name: [] for name in sides}
        for repeat in range(args.repeats):
            for name in (sides if repeat % 2 == 0 else reversed(list(sides))):
                runs[name].append(timed(sides[name]))
        pair_ratios = [b[0] / s[0] for b, s in zip(runs["bare loop"], runs["tfgen score"])]
        table = [(name, min(w for w, _ in r), statistics.median(c for _, c in r)) for name, r in runs.items()]
        beam = []
        if not args.no_beam:
            from tfgen.scoring.beam import score_with_beam

            for label, options in (("1 worker", ["--direct_num_workers=1"]),
                                   ("2 workers (multi_processing)",
                                    ["--direct_num_workers=2", "--direct_running_mode=multi_processing"])):
                measured = {}
                for rows, path in ((STARTUP_ROWS, "head.npy"), (args.rows, "x.npy")):
                    counts = {}
                    measured[rows] = timed(lambda: counts.update(score_with_beam(
                        scorer, os.path.join(tmp, path), os.path.join(tmp, "beam.parquet"), "DirectRunner",
                        options, batch_size=args.batch_size)))
                    assert counts["rows"] == rows, counts
                beam.append((label, measured))
    os.system("uptime")
    bare_wall, bare_cpu = table[0][1], table[0][2]
    print(f"{os.path.basename(args.model.rstrip('/'))}: {args.rows} rows, batch {args.batch_size}, "
          f"{args.repeats} interleaved runs a side")
    print("| path | rows/s (best) | x bare loop (best) | x bare loop (median of pairs) "
          "| CPU s / 1000 rows (median) | x bare loop CPU |\n|---|---|---|---|---|---|")
    for name, wall, cpu in table:
        pairs = "1.00" if name == "bare loop" else f"{statistics.median(pair_ratios):.2f}"
        print(f"| {name} | {args.rows / wall:.0f} | {bare_wall / wall:.2f} | {pairs} "
              f"| {1000 * cpu / args.rows:.3f} | {bare_cpu / cpu:.2f} |")
    print("pair ratios (bare wall / score wall): " + ", ".join(f"{r:.2f}" for r in pair_ratios))
    if beam:
        print(f"\n| Beam DirectRunner | {STARTUP_ROWS}-row run (start-up), s | {args.rows}-row run, s "
              f"| rows/s | x bare loop | rows/s after start-up | CPU s / 1000 rows |\n|---|---|---|---|---|---|---|")
        for label, measured in beam:
            (head_wall, _), (wall, cpu) = measured[STARTUP_ROWS], measured[args.rows]
            steady = (args.rows - STARTUP_ROWS) / max(wall - head_wall, 1e-9)
            print(f"| {label} | {head_wall:.1f} | {wall:.1f} | {args.rows / wall:.0f} | {bare_wall / wall:.2f} "
                  f"| {steady:.0f} | {1000 * cpu / args.rows:.3f} |")
    if args.startup:
        imported, loaded = startup_seconds(scorer.source)
        print(f"\nA fresh process: import tensorflow {imported:.1f} s, then tf.saved_model.load "
              f"{loaded - imported:.1f} s ({loaded:.1f} s in all)")


if __name__ == "__main__":
    main()
