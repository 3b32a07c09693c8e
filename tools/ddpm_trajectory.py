"""The denoising trajectory picture of the README (docs/images/ddpm_trajectory.png).

A row per digit 0..9 (one seed each), a column per snapshot of the sampler from pure
noise x_T (left) to the sample (right), drawn by the shipped digits DDPM: its
architecture and weights are read from the export (`tfgen.training.init_from`), and
`DDPM.denoising_trajectory` runs the sampler the `sample` signature runs, keeping every
step's x.

Usage (repo root):
    .venv/bin/python tools/ddpm_trajectory.py [--model saved_models/digits_ddpm]
        [--steps 50] [--columns 11] [--out docs/images/ddpm_trajectory.png]
"""

import argparse

import numpy as np

from tfgen.backend import tf
from tfgen.data.visualize import save_image_grid
from tfgen.errors import UserError
from tfgen.export.reader import read_metadata, resolve_version
from tfgen.models.base import model_from_config
from tfgen.training.init_from import restore_weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="saved_models/digits_ddpm", help="export base path or version directory")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (eta 0)")
    parser.add_argument("--columns", type=int, default=11, help="snapshots per row, x_T to the sample")
    parser.add_argument("--seed", type=int, default=0, help="the first row's seed")
    parser.add_argument("--out", default="docs/images/ddpm_trajectory.png")
    args = parser.parse_args()
    if args.columns < 2:
        raise SystemExit("--columns must be >= 2")
    version = resolve_version(args.model)
    metadata = read_metadata(version)
    if metadata["class_name"] != "DDPM":
        raise UserError(f"{version} is a {metadata['class_name']} export, not a DDPM")
    model = model_from_config("DDPM", metadata["config"])
    restore_weights(model, version)
    spec = model.data_spec
    rows = spec.num_classes or 10
    condition = tf.range(rows, dtype=tf.int32) if spec.conditional else None
    seeds = tf.range(args.seed, args.seed + rows, dtype=tf.int64)
    states = model.denoising_trajectory(seeds, 1.0, condition, steps=args.steps).numpy()  # [S+1, B, ...]
    picked = np.linspace(0, args.steps, args.columns).round().astype(int)
    grid = np.transpose(states[picked], (1, 0, 2, 3, 4)).reshape(-1, *spec.event_shape)
    print(save_image_grid(grid, spec, args.out, num_columns=args.columns, min_size=512))


if __name__ == "__main__":
    main()
