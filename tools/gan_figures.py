"""The GAN pictures of the README (docs/images/gan_*.png), from the shipped exports.

Usage (repo root): .venv/bin/python tools/gan_figures.py

Sample grids and interpolation strips are what `tfgen sample` / `tfgen interpolate`
write (this runs those commands); the conditional GAN's grid has a row per digit
(10 seeds per class), which `tfgen sample` (a column per class) does not lay out.
"""

import os
import subprocess
import sys

import numpy as np

from tfgen.backend import tf
from tfgen.data.spec import DataSpec
from tfgen.data.visualize import save_image_grid
from tfgen.export.reader import read_metadata

OUT = "docs/images"
TFGEN = os.path.join(os.path.dirname(sys.executable), "tfgen")
COMMANDS = [
    ["sample", "--model", "saved_models/digits_dcgan", "-n", "100", "--out", f"{OUT}/gan_digits_dcgan.png"],
    ["sample", "--model", "saved_models/eight_gaussians_wgan_gp", "-n", "2000",
     "--out", f"{OUT}/gan_eight_gaussians.png"],
    ["interpolate", "--model", "saved_models/digits_dcgan", "--seeds", "2,6", "--steps", "10", "--method", "both",
     "--out", f"{OUT}/gan_digits_dcgan_interpolation.png"],
    ["interpolate", "--model", "saved_models/digits_conditional_gan", "--seeds", "2,6", "--steps", "10",
     "--condition", "4", "--method", "both", "--out", f"{OUT}/gan_digits_conditional_interpolation.png"],
]


def conditional_rows(base="saved_models/digits_conditional_gan", per_class=10):
    version = os.path.join(base, str(max(int(v) for v in os.listdir(base) if v.isdigit())))
    spec = DataSpec.from_dict(read_metadata(version)["data_spec"])
    condition = np.repeat(np.arange(spec.num_classes, dtype=np.int32), per_class)
    samples = tf.saved_model.load(version).signatures["sample"](
        seed=tf.range(len(condition), dtype=tf.int64), temperature=tf.ones([len(condition)]),
        condition=tf.constant(condition))["samples"].numpy()
    return save_image_grid(samples, spec, f"{OUT}/gan_digits_conditional_rows.png", num_columns=per_class)


if __name__ == "__main__":
    for command in COMMANDS:
        subprocess.run([TFGEN, *command], check=True)
    print("wrote", conditional_rows())
