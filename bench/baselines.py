"""Classical density baselines (GMM, KDE) in test bits/dim; prints a table, writes nothing.

Same splits and dequantization as tfgen's flows (see `tfgen.metrics.baselines`), so the
numbers sit next to theirs. Usage:

    python bench/baselines.py                      # digits, under a minute
    python bench/baselines.py --datasets photo_patches

Measured (seed 0, test bits/dim): digits GMM 2.759 (5 components), KDE 3.201 (bandwidth
0.1); photo_patches 8x8x3 GMM 3.402 (10 components). photo_patches is not in the
default run: its GMM took ~12 min and its KDE is slower still on a loaded 2-core machine.
"""

import argparse
import time

from tfgen.data import load_dataset
from tfgen.metrics.baselines import gmm_baseline, kde_baseline

BASELINES = {"gmm (components)": gmm_baseline, "kde (bandwidth)": kde_baseline}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"], help="built-in dataset names")
    parser.add_argument("--seed", type=int, default=0, help="split and dequantization seed")
    args = parser.parse_args()

    header = f"{'dataset':<16}{'baseline':<20}{'choice':>8}{'val bits/dim':>14}{'test bits/dim':>15}{'seconds':>9}"
    print(header)
    print("-" * len(header))
    for name in args.datasets:
        dataset = load_dataset({"name": name, "seed": args.seed})
        for label, baseline in BASELINES.items():
            start = time.perf_counter()
            result = baseline(dataset, seed=args.seed)
            seconds = time.perf_counter() - start
            validation = result["validation_bits_per_dim"][result["choice"]]
            print(
                f"{name:<16}{label:<20}{result['choice']:>8}{validation:>14.3f}"
                f"{result['test_bits_per_dim']:>15.3f}{seconds:>9.1f}"
            )


if __name__ == "__main__":
    main()
