"""Bayes classification by the shipped digits DDPM: the stratified estimate of its bound
(`classify_terms` = K denoising terms, what the export's `classify` runs) against the full
T-term bound (what `log_prob` and `tfgen classify` run).

    .venv/bin/python bench/ddpm_classify.py [--model saved_models/digits_ddpm] [--terms 10 25 50 100]
                                            [--full-rows 100]

For each K, the model is rebuilt from the export's config with `classify_terms` = K and
its weights (so one export serves every K); log p(x | y) for the 10 classes of every test
digit (the split the model was trained beside), argmax p(y | x) with the training class
prior as the export bakes in. The full bound runs on the first `--full-rows` test digits
(T passes per class); every K is also scored on those rows for the decisions it shares
with the bound and its mean distance from the bound. A logistic regression on the same
train split is the reference (issue 11: "within 3 points"). Prints a Markdown table.
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import logistic_regression_accuracy, machine_line  # noqa: E402

from tfgen.backend import tf  # noqa: E402
from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.export.reader import read_metadata, resolve_version  # noqa: E402
from tfgen.metrics.bits import bits_per_dim  # noqa: E402
from tfgen.models.base import model_from_config  # noqa: E402
from tfgen.scoring.classify import bayes  # noqa: E402
from tfgen.training.init_from import restore_weights  # noqa: E402

REPO = os.path.dirname(HERE)
BATCH = 640  # rows x classes per call


def conditional_log_probs(function, x, num_classes):
    """log p(x | y) `[N, C]` by `function(x, condition)` on the rows repeated per class."""
    out = []
    for i in range(0, len(x), BATCH // num_classes):
        chunk = x[i:i + BATCH // num_classes]
        repeated = tf.constant(np.repeat(chunk, num_classes, axis=0), tf.float32)
        classes = tf.constant(np.tile(np.arange(num_classes, dtype=np.int32), len(chunk)))
        out.append(function(repeated, classes).numpy().reshape(len(chunk), num_classes))
    return np.concatenate(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(REPO, "saved_models", "digits_ddpm"))
    parser.add_argument("--terms", type=int, nargs="+", default=[10, 25, 50, 100], help="values of K")
    parser.add_argument("--full-rows", type=int, default=100, help="test digits scored with the full bound (0: none)")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    version = resolve_version(args.model)
    meta = read_metadata(version)
    data = load_dataset(meta["training_data"]["data"])
    train, test = data.splits["train"], data.splits["test"]
    prior = meta["training_data"]["class_prior"]
    num_classes = len(prior)
    x = test.x.astype(np.float32)
    dims = int(np.prod(x.shape[1:]))
    timesteps = meta["config"]["timesteps"]

    def model_with(terms):
        model = model_from_config(meta["class_name"], {**meta["config"], "classify_terms": terms})
        restore_weights(model, version)
        return model

    full_rows = min(args.full_rows, len(x))
    results = []
    full = None
    if full_rows:
        model = model_with(timesteps)
        start = time.perf_counter()
        full = conditional_log_probs(model.log_prob, x[:full_rows], num_classes)
        seconds = (time.perf_counter() - start) / full_rows
        decided = np.argmax(bayes(full, prior)[0], 1)
        results.append([f"full bound (K = {timesteps - 1})", timesteps, "-",
                        f"{np.mean(decided == test.y[:full_rows]):.4f} ({full_rows} rows)", "1.000", "0", seconds])
        print(f"# full bound: {seconds:.2f} s per row", flush=True)
    for terms in args.terms:
        model = model_with(terms)
        passes = (model.classify_estimate or {"network_passes": timesteps})["network_passes"]
        start = time.perf_counter()
        estimate = conditional_log_probs(model.classify_log_prob, x, num_classes)
        seconds = (time.perf_counter() - start) / len(x)
        decided = np.argmax(bayes(estimate, prior)[0], 1)
        agree, distance = "-", "-"
        if full is not None:
            agree = f"{np.mean(decided[:full_rows] == np.argmax(bayes(full, prior)[0], 1)):.3f}"
            gap = bits_per_dim(estimate[:full_rows], dims) - bits_per_dim(full, dims)
            distance = f"{np.mean(np.abs(gap)):.3f}"
        results.append([f"estimate, K = {terms}", passes, f"{np.mean(decided == test.y):.4f}",
                        f"{np.mean(decided[:full_rows] == test.y[:full_rows]):.4f} ({full_rows} rows)" if full_rows
                        else "-", agree, distance, seconds])
        print(f"# K = {terms}: {seconds:.2f} s per row", flush=True)

    reference = logistic_regression_accuracy(train, test, data.spec.levels)
    print(f"\n{version}: T = {timesteps}; {len(x)} test digits; logistic regression (same train split) "
          f"{reference:.4f}\n")
    print("| log p(x given y) | network passes per class | accuracy, all test digits | accuracy, first rows | "
          "decisions as the full bound | mean abs gap to the bound (bits/dim) | s per row (10 classes) |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        print("| " + " | ".join(str(v) for v in row[:-1]) + f" | {row[-1]:.3f} |")
    print(machine_line())


if __name__ == "__main__":
    main()
