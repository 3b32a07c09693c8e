"""The datasets that need no download: scikit-learn's digits and photographs, 2-D toys.

Built-in datasets (options and defaults):

- `digits`: scikit-learn's 8x8 digits, event shape (8, 8, 1), 17 levels (0..16), kind
  "image". Labels 0..9 are always kept in `Split.y`; `spec.num_classes` is 10 only with
  `conditional: true`, so an unconditional model is fed `x` alone.
  Options: seed=0, validation_fraction=0.15, test_fraction=0.15, conditional=False,
  perturbation=0.0 (the probability that a training-split pixel is replaced by a uniform
  level, for a likelihood-ratio background model; validation and test stay clean).
- `photo_patches`: square patches of scikit-learn's sample photographs (china.jpg,
  flower.jpg), event shape (patch_size, patch_size, 3), 256 levels, kind "image", no
  labels. Each image is cut into blocks of 4*patch_size pixels; every patch lies inside
  one block and blocks (not patches) are split, so test patches come from image regions
  never seen in training. Options: patch_size=8, num_patches=20000, seed=0,
  validation_fraction=0.1, test_fraction=0.1.
- `two_moons`, `circles`, `eight_gaussians`, `checkerboard`: continuous 2-D toys, event
  shape (2,), kind "vector", no labels, spec low=-3, high=3 (a plot range that holds
  essentially all the mass, not a hard bound). Options: num_samples=20000, noise (see
  `_TOYS`), seed=0, validation_fraction=0.1, test_fraction=0.1.
"""

import math

import numpy as np

from tfgen.data.datasets import make_dataset, register_dataset
from tfgen.errors import UserError


@register_dataset(
    "digits", validation_fraction=("float", 0.15), test_fraction=("float", 0.15), conditional=("bool", False),
    perturbation=("float", 0.0),
)
def _digits(seed, validation_fraction, test_fraction, conditional, perturbation):
    from sklearn.datasets import load_digits

    if not 0.0 <= perturbation <= 1.0:
        raise UserError(f"digits: perturbation is a probability in [0, 1], got {perturbation}")
    digits = load_digits()
    dataset = make_dataset(
        digits.images[..., None], digits.target, {"kind": "image", "levels": 17},
        source="digits", seed=seed, validation_fraction=validation_fraction,
        test_fraction=test_fraction, conditional=conditional,
    )
    if perturbation:
        dataset.splits["train"] = perturbed(dataset.splits["train"], perturbation, 17, seed)
    return dataset


def perturbed(split, rate, levels, seed):
    """`split` with each value replaced, with probability `rate`, by a uniform draw over
    the levels: the training data of a background model for the likelihood ratio (Ren et
    al. 2019, https://arxiv.org/abs/1906.02845), which destroys the data's structure but
    keeps its population statistics."""
    rng = np.random.default_rng([seed, 1906_02845])
    replace = rng.random(split.x.shape) < rate
    noise = rng.integers(0, levels, size=split.x.shape).astype(split.x.dtype)
    return type(split)(np.where(replace, noise, split.x), split.y)


@register_dataset("photo_patches", patch_size=("int", 8), num_patches=("int", 20000))
def _photo_patches(patch_size, num_patches, seed, validation_fraction, test_fraction):
    from sklearn.datasets import load_sample_images

    images = np.stack(load_sample_images().images)  # [2, 427, 640, 3] uint8
    if not 1 <= patch_size <= min(images.shape[1:3]) // 4:
        raise UserError(f"photo_patches: patch_size must be in [1, {min(images.shape[1:3]) // 4}], got {patch_size}")
    block = 4 * patch_size
    rows, cols = images.shape[1] // block, images.shape[2] // block
    if num_patches < 1:
        raise UserError(f"photo_patches: num_patches must be >= 1, got {num_patches}")
    rng = np.random.default_rng(seed)
    blocks = rng.integers(len(images) * rows * cols, size=num_patches)
    image, rest = np.divmod(blocks, rows * cols)
    top = rest // cols * block + rng.integers(block - patch_size + 1, size=num_patches)
    left = rest % cols * block + rng.integers(block - patch_size + 1, size=num_patches)
    offsets = np.arange(patch_size)
    patches = images[
        image[:, None, None],
        top[:, None, None] + offsets[None, :, None],
        left[:, None, None] + offsets[None, None, :],
    ]
    return make_dataset(
        patches, None, {"kind": "image", "levels": 256}, source="photo_patches", seed=seed,
        validation_fraction=validation_fraction, test_fraction=test_fraction, groups=blocks,
    )


def _moons(rng, n, noise):
    from sklearn.datasets import make_moons

    return make_moons(n, noise=noise, random_state=np.random.RandomState(rng.integers(2**31)))[0]


def _circles(rng, n, noise):
    from sklearn.datasets import make_circles

    return make_circles(n, noise=noise, factor=0.5, random_state=np.random.RandomState(rng.integers(2**31)))[0]


_EIGHT_GAUSSIANS_NOISE = 0.1


def _eight_gaussians(rng, n, noise):
    angles = rng.integers(8, size=n) * (2 * math.pi / 8)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1) + noise * rng.standard_normal((n, 2))


def eight_gaussians_modes(noise=_EIGHT_GAUSSIANS_NOISE):
    """The `eight_gaussians` dataset's mode centres `[8, 2]` and their standard deviation,
    in the dataset's (standardized) coordinates, for `noise` as in its config."""
    centre, scale = np.asarray(_TOYS["eight_gaussians"][2]), np.asarray(_TOYS["eight_gaussians"][3])
    angles = np.arange(8) * (2 * math.pi / 8)
    modes = (np.stack([np.cos(angles), np.sin(angles)], axis=1) - centre) / scale
    # The scale is the same on both axes, so the modes stay isotropic.
    return modes, float(noise / scale[0])


def _checkerboard(rng, n, noise):
    # The 4x4 board on [-4, 4]^2 of FFJORD (Grathwohl et al. 2019, arXiv:1810.01367).
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) - rng.integers(2, size=n) * 2.0 + np.floor(x1) % 2
    return 2.0 * np.stack([x1, x2], axis=1) + noise * rng.standard_normal((n, 2))


# name -> (generator, default noise, centre, scale). Samples are standardized by the fixed
# affine map (x - centre) / scale, the mean and standard deviation of the noise-free
# density, so they are roughly unit scale whatever the noise or sample size.
_TOYS = {
    "two_moons": (_moons, 0.05, (0.5, 0.25), (0.866, 0.494)),
    "circles": (_circles, 0.05, (0.0, 0.0), (0.559, 0.559)),
    "eight_gaussians": (_eight_gaussians, _EIGHT_GAUSSIANS_NOISE, (0.0, 0.0), (0.707, 0.707)),
    "checkerboard": (_checkerboard, 0.0, (0.0, 0.0), (2.309, 2.309)),
}
TOY_RANGE = 3.0


def _register_toy(name, generate, default_noise, centre, scale):
    @register_dataset(name, num_samples=("int", 20000), noise=("float", default_noise))
    def build(num_samples, noise, seed, validation_fraction, test_fraction):
        if num_samples < 1 or noise < 0:
            raise UserError(f"{name}: num_samples must be >= 1 and noise >= 0, got {num_samples}, {noise}")
        x = (generate(np.random.default_rng(seed), num_samples, noise) - np.asarray(centre)) / np.asarray(scale)
        return make_dataset(
            x, None, {"kind": "vector", "low": -TOY_RANGE, "high": TOY_RANGE}, source=name, seed=seed,
            validation_fraction=validation_fraction, test_fraction=test_fraction,
        )


for _name, _toy in _TOYS.items():
    _register_toy(_name, *_toy)
