"""The score model's picture for the README (docs/images/checkerboard_score.png): the
shipped 2-D model's annealed Langevin samples over its own probability-flow ODE
density on a grid, both from the export's signatures.

Usage (repo root): .venv/bin/python tools/score_figures.py [--samples N] [--grid N]
"""

import argparse
import numpy as np

from tfgen.data.visualize import save_scatter
from tfgen.export.reader import call_signature, resolve_version, sample_rows

BASE = "saved_models/checkerboard_score"
OUT = "docs/images/checkerboard_score.png"
LIMITS = (-2.5, 2.5)


def grid_density(log_prob, limits, cells, batch=2000):
    """exp(log_prob) at the centres of `cells` x `cells` cells over `limits`^2, `[cells,
    cells]` (first axis x), and the cell area."""
    edges = np.linspace(*limits, cells + 1, dtype=np.float32)
    centres = (edges[:-1] + edges[1:]) / 2
    points = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    values = np.concatenate([log_prob(points[i:i + batch]) for i in range(0, len(points), batch)])
    return np.exp(values).reshape(cells, cells), float(edges[1] - edges[0]) ** 2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="Langevin samples (default 2000)")
    parser.add_argument("--grid", type=int, default=200, help="density grid cells per axis (default 200)")
    args = parser.parse_args()
    path = resolve_version(BASE)
    density, area = grid_density(lambda x: call_signature(path, "log_prob", {"x": x})["log_prob"], LIMITS, args.grid)
    # The sampler's settings (steps, step_size) left out: the export's defaults.
    samples = call_signature(path, "sample", sample_rows(args.samples))["samples"]
    title = f"Langevin samples on the ODE density (mass {density.sum() * area:.3f})"
    print(save_scatter(samples, OUT, limits=LIMITS, title=title, density=density))


if __name__ == "__main__":
    main()
