"""Sample quality of the shipped digits models next to the floor; prints a table, writes nothing.

Every figure is `tfgen.metrics.report.sample_quality`, the computation `tfgen evaluate`
runs, in the shipped digits classifier's feature space (its penultimate layer,
standardized; trained on the digits train split only):

- the floor: the validation digits (270) against the test digits (269), two disjoint
  sets the classifier never trained on: what a perfect model's samples would score at
  these sample sizes;
- each model: as many samples as the test split holds (269; seeds 0 .. 268, temperature
  1.0; a conditional model draws for the test rows' own labels) against the test
  digits, and the spread of the Frechet distance over `--draws` disjoint blocks of
  seeds (0.., 1000.., ...), since a few hundred samples make it noisy.

Usage:

    python bench/sample_quality.py                          # the floor and the shipped digits models
    python bench/sample_quality.py --models digits_dcgan    # any exports under saved_models/
    python bench/sample_quality.py --draws 1 --quick        # one draw per model (smoke run)
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import loadavg  # noqa: E402

from tfgen.data.datasets import load_dataset  # noqa: E402
from tfgen.evaluation.evaluate import evaluate  # noqa: E402
from tfgen.latent.callers import LocalCaller  # noqa: E402
from tfgen.metrics.features import load_feature_network  # noqa: E402
from tfgen.metrics.report import sample_quality  # noqa: E402

REPO = os.path.dirname(HERE)
MODELS = ["digits_realnvp", "digits_conditional_glow", "digits_vae", "digits_conditional_vae",
          "digits_conditional_pixel_cnn", "digits_ppca"]
SEED_BLOCK = 1000


def row(name, figures, fd_spread=None, seconds=None):
    accuracy = figures.get("class_accuracy")
    spread = f"{fd_spread[0]:.3f} +- {fd_spread[1]:.3f}" if fd_spread else ""
    return (f"{name:<30}{figures['num_generated']:>5}{figures['frechet_distance']:>9.3f}  {spread:<17}"
            f"{figures['kid']:>8.4f} +- {figures['kid_stderr']:.4f}{figures['precision']:>8.3f}{figures['recall']:>8.3f}"
            f"{'' if accuracy is None else f'{accuracy:.3f}':>9}{'' if seconds is None else f'{seconds:.1f}':>8}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, help="export names under saved_models/")
    parser.add_argument("--draws", type=int, default=5, help="blocks of seeds for the Frechet distance spread")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="the floor and the first model, one draw")
    args = parser.parse_args()
    if args.quick:
        args.models, args.draws = args.models[:1], 1

    dataset = load_dataset({"name": "digits", "seed": 0})
    test, validation = dataset.splits["test"], dataset.splits["validation"]
    network = load_feature_network("digits_classifier")
    print(f"load average before: {loadavg()}")
    header = (f"{'model (vs the test digits)':<30}{'n':>5}{'FD':>9}  {'FD over draws':<17}{'KID +- s.e.':>19}"
              f"{'prec.':>8}{'recall':>8}{'class ok':>9}{'seconds':>8}")
    print(header)
    print("-" * len(header))
    floor = sample_quality(test.x, validation.x, dataset.spec, network,
                           fake_labels=validation.y)
    print(row("floor: validation digits", floor))
    for name in args.models:
        start = time.perf_counter()
        caller = LocalCaller(os.path.join(REPO, "saved_models", name))
        spec = caller.data_spec()
        reference = load_dataset(caller.metadata["training_data"]["data"]).splits["test"]
        runs = [evaluate(caller, reference, spec, network, seed=draw * SEED_BLOCK, temperature=args.temperature)
                for draw in range(args.draws)]
        distances = np.array([r["frechet_distance"] for r in runs])
        spread = (distances.mean(), distances.std(ddof=1)) if len(runs) > 1 else None
        print(row(name, runs[0], spread, time.perf_counter() - start), flush=True)
    print(f"load average after: {loadavg()}")
    print(f"features: {network.name} ({network.dimension} dims; {network.preprocessing}); KID over "
          f"{floor['kid_subsets']} disjoint subsets of ~{floor['kid_subset_size']}; precision/recall k = {floor['k']}; "
          f"'class ok': the classifier gives the requested digit (floor: the validation labels)")


if __name__ == "__main__":
    main()
