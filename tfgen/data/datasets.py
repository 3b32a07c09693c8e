"""Datasets that need no download, the shared split/validation machinery, and tf.data input.

Every dataset, built-in or loaded from the user's files, comes back as a `Dataset`: a
`DataSpec` plus named `Split`s ("train", "validation", "test"; a split whose fraction is
0 is absent). All of them go through the same three steps:

1. options checked against the dataset's schema (`_parse_options`);
2. arrays checked (`validate_examples`): numeric dtype, event shape, finite values,
   integers in `[0, levels-1]` for discrete data, labels, non-empty;
3. one seeded split (`split_indices`), stratified by label when there are labels and
   grouped when examples share a source region (photo patches).

Example:

    dataset = load_dataset({"name": "digits", "conditional": True})
    train = to_tf_dataset(dataset.splits["train"], dataset.spec, batch_size=64,
                          shuffle=True, seed=0, repeat=True)

Built-in datasets (options and defaults):

- `digits`: scikit-learn's 8x8 digits, event shape (8, 8, 1), 17 levels (0..16), kind
  "image". Labels 0..9 are always kept in `Split.y`; `spec.num_classes` is 10 only with
  `conditional: true`, so an unconditional model is fed `x` alone.
  Options: seed=0, validation_fraction=0.15, test_fraction=0.15, conditional=False.
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

User data loaders (`npy`, `npz`, `image_folder`, `tfrecord`) live in
`tfgen.data.loaders` and register themselves here.
"""

import dataclasses
import math
import os
from typing import Dict, Optional, Tuple

import numpy as np

from tfgen.data.spec import KINDS, DataSpec

SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Args:
      x: float32 `[N, *event_shape]`.
      y: int32 `[N]` class ids, or None.
    """

    x: np.ndarray
    y: Optional[np.ndarray] = None

    def __len__(self):
        return len(self.x)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data spec and its splits.

    Args:
      spec: the `DataSpec` every split satisfies.
      splits: split name ("train", "validation", "test") -> `Split`.
      class_names: names of the label ids (e.g. image-folder subfolders), or None.
    """

    spec: DataSpec
    splits: Dict[str, Split]
    class_names: Optional[Tuple[str, ...]] = None


# === Options ===

REQUIRED = object()

# Expected type name -> predicate. The name is what the error message shows.
_TYPES = {
    "int": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, (bool, np.bool_)),
    "str": lambda v: isinstance(v, str),
    "path": lambda v: isinstance(v, (str, os.PathLike)),
    "list of ints": lambda v: isinstance(v, (list, tuple)) and len(v) > 0
    and all(_TYPES["int"](d) for d in v),
    "int or list of 2 ints": lambda v: _TYPES["int"](v)
    or (_TYPES["list of ints"](v) and len(v) == 2),
}

# Options every dataset accepts.
COMMON_OPTIONS = {
    "seed": ("int", 0),
    "validation_fraction": ("float", 0.1),
    "test_fraction": ("float", 0.1),
}

_DATASETS = {}


def register_dataset(name, **options):
    """Registers `builder(**options) -> Dataset` under `name`.

    Args:
      name: the config's "name".
      **options: option name -> (expected type name, default). The default `REQUIRED`
        makes an option mandatory; a default of None makes it optional. The options in
        `COMMON_OPTIONS` are added unless overridden.
    """

    def decorate(builder):
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        _DATASETS[name] = (builder, {**COMMON_OPTIONS, **options})
        return builder

    return decorate


def dataset_names():
    return sorted(_DATASETS)


def _parse_options(name, config, schema):
    """Config options checked against the schema and completed with defaults."""
    unknown = sorted(set(config) - set(schema))
    if unknown:
        raise ValueError(
            f"dataset {name!r}: unknown option {unknown[0]!r}; known options: {sorted(schema)}"
        )
    options = {}
    for key, (type_name, default) in schema.items():
        value = config.get(key, default)
        if value is REQUIRED:
            raise ValueError(f"dataset {name!r}: option {key!r} ({type_name}) is required")
        if value is not None and not _TYPES[type_name](value):
            raise ValueError(
                f"dataset {name!r}: option {key!r} must be {type_name}, got {type(value).__name__} {value!r}"
            )
        options[key] = value
    if "kind" in options and options["kind"] is not None and options["kind"] not in KINDS:
        raise ValueError(f"dataset {name!r}: option 'kind' must be one of {KINDS}, got {options['kind']!r}")
    return options


def load_dataset(config) -> Dataset:
    """Builds a dataset from `{"name": ..., **options}`.

    Args:
      config: a dict with the dataset "name" and its options (see the module docstring
        and `tfgen.data.loaders`). Unknown option keys and wrongly typed values are a
        `ValueError` naming the key.

    Returns:
      A `Dataset`.
    """
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"dataset config must be a dict with a 'name', got {config!r}")
    config = dict(config)
    name = config.pop("name")
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {dataset_names()}")
    builder, schema = _DATASETS[name]
    return builder(**_parse_options(name, config, schema))


# === Validation and splitting (shared by every dataset) ===

def _first_index(mask):
    """The index tuple of the first True in `mask`, formatted `[i, j, ...]`."""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(np.argmax(mask), mask.shape)) + "]"


def validate_examples(x, y=None, *, source, event_shape=None, levels=None):
    """Checks examples and labels; returns them as float32 / int32 arrays.

    Args:
      x: array-like `[N, *event_shape]`.
      y: optional labels `[N]`, non-negative integers.
      source: what the data came from (a path or dataset name), opening every message.
      event_shape: expected shape of one example, or None to accept `x.shape[1:]`.
      levels: for discrete data, values must be integers in `[0, levels-1]`.

    Raises:
      ValueError: non-numeric dtype, no examples, wrong shape, NaN/Inf (with the count
        and first index), values out of range or non-integer, bad labels.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{source}: data must be numeric, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{source}: no examples (data shape {x.shape}; expected [N, *event_shape] with N > 0)")
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(
            f"{source}: examples have shape {tuple(x.shape[1:])}, expected event_shape {tuple(event_shape)}"
        )
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"{source}: {int(bad.sum())} NaN/Inf value(s), first at x{_first_index(bad)}")
    if levels is not None:
        bad = (x < 0) | (x > levels - 1)
        if bad.any():
            raise ValueError(
                f"{source}: {int(bad.sum())} value(s) outside [0, {levels - 1}] (levels={levels}), "
                f"first at x{_first_index(bad)} = {x[np.unravel_index(np.argmax(bad), bad.shape)]}"
            )
        bad = x != np.floor(x)
        if bad.any():
            raise ValueError(
                f"{source}: {int(bad.sum())} non-integer value(s) in discrete data, first at x{_first_index(bad)}"
            )
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.floor(y))):
            raise ValueError(f"{source}: labels must be integers, got dtype {y.dtype}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"{source}: labels have shape {y.shape}, expected ({x.shape[0]},)")
        if np.any(y < 0):
            raise ValueError(f"{source}: labels must be >= 0, first negative at y[{int(np.argmax(y < 0))}]")
        y = y.astype(np.int32)
    return x, y


def split_indices(num_examples, *, seed, validation_fraction, test_fraction, stratify=None, groups=None):
    """Seeded train/validation/test indices; the one split every dataset uses.

    Units (examples, or groups of examples sharing a `groups` id) are ranked at random
    within their stratum; a unit at relative rank q = (rank + 0.5) / stratum_size goes to
    test if q < test_fraction, to validation if q < test_fraction + validation_fraction,
    else to train. So every stratum (label) is split in the same proportions.

    Args:
      num_examples: N.
      seed: the split's seed.
      validation_fraction, test_fraction: in [0, 1), summing to less than 1.
      stratify: optional labels `[N]` to split each class in proportion.
      groups: optional group ids `[N]`; a group is never divided between splits.
        Pass `stratify` or `groups`, not both.

    Returns:
      split name -> sorted int64 indices; splits with fraction 0 are absent.
    """
    fractions = {"validation": validation_fraction, "test": test_fraction}
    for name, fraction in fractions.items():
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name}_fraction must be in [0, 1), got {fraction}")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction + test_fraction must be < 1, got {validation_fraction} + {test_fraction}"
        )
    if stratify is not None and groups is not None:
        raise ValueError("split_indices: pass stratify or groups, not both")
    rng = np.random.default_rng(seed)
    if groups is None:
        unit_of_example = np.arange(num_examples)
        strata = np.zeros(num_examples, np.int64) if stratify is None else np.asarray(stratify)
    else:
        _, unit_of_example = np.unique(np.asarray(groups), return_inverse=True)
        strata = np.zeros(unit_of_example.max() + 1, np.int64)
    num_units = len(strata)
    # Random order, then a stable sort by stratum: ranks within a stratum are random.
    order = rng.permutation(num_units)
    order = order[np.argsort(strata[order], kind="stable")]
    _, first, sizes = np.unique(strata[order], return_index=True, return_counts=True)
    stratum_pos = np.searchsorted(np.unique(strata), strata[order])
    q = np.empty(num_units)
    q[order] = (np.arange(num_units) - first[stratum_pos] + 0.5) / sizes[stratum_pos]
    unit_split = np.where(q < test_fraction, 2, np.where(q < test_fraction + validation_fraction, 1, 0))
    example_split = unit_split[unit_of_example]
    indices = {}
    for code, name in enumerate(SPLIT_NAMES):
        idx = np.flatnonzero(example_split == code)
        if code == 0 or fractions[name] > 0:
            if len(idx) == 0:
                raise ValueError(
                    f"{num_units} example(s)/group(s) are too few for a {name} split; "
                    f"add data or lower the fractions"
                )
            indices[name] = idx
    return indices


def make_dataset(x, y, spec_fields, *, source, seed, validation_fraction, test_fraction,
                 groups=None, conditional=False, class_names=None, event_shape=None) -> Dataset:
    """Validates arrays, builds the spec and splits them: the end of every dataset builder.

    Args:
      x, y: examples `[N, *event_shape]` and optional labels `[N]`.
      spec_fields: `DataSpec` fields except `event_shape` and `num_classes` (`kind`,
        `levels`; continuous data without `low`/`high` gets the data's min/max).
      source: named in every error message.
      seed, validation_fraction, test_fraction: the split (see `split_indices`); labelled
        data is stratified by label.
      groups: optional group ids keeping related examples in one split.
      conditional: whether the spec declares classes (needs labels).
      class_names: optional names of the label ids.
      event_shape: optional expected shape of one example.
    """
    x, y = validate_examples(x, y, source=source, event_shape=event_shape, levels=spec_fields.get("levels"))
    spec_fields = dict(spec_fields)
    if spec_fields.get("levels") is None:
        spec_fields.setdefault("low", float(x.min()))
        spec_fields.setdefault("high", float(x.max()))
    num_classes = None
    if conditional:
        if y is None:
            raise ValueError(f"{source}: conditional=True needs labels, and this data has none")
        num_classes = len(class_names) if class_names is not None else int(y.max()) + 1
    spec = DataSpec(event_shape=x.shape[1:], num_classes=num_classes, **spec_fields)
    indices = split_indices(
        len(x), seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction,
        stratify=y if groups is None else None, groups=groups,
    )
    splits = {name: Split(x[idx], None if y is None else y[idx]) for name, idx in indices.items()}
    return Dataset(spec, splits, None if class_names is None else tuple(class_names))


# === tf.data input ===

def to_tf_dataset(split, spec, batch_size, shuffle, seed=None, repeat=False, drop_remainder=False):
    """A `tf.data.Dataset` over one split, as `fit` expects it.

    Yields `x` (float32 `[B, *event_shape]`) for an unconditional spec and `(x, y)` (y
    int32 `[B]`) when `spec.num_classes` is set.

    Args:
      split: a `Split`.
      spec: the dataset's `DataSpec`.
      batch_size: examples per batch (the global batch under a `tf.distribute` strategy).
      shuffle: reshuffle every epoch (seeded by `seed`).
      seed: shuffle seed.
      repeat: repeat forever (use with `steps_per_epoch`).
      drop_remainder: drop the last partial batch, giving static batch shapes
        (needed for TPUs and some multi-worker set-ups).
    """
    from tfgen.backend import tf

    if spec.conditional and split.y is None:
        raise ValueError("spec is conditional (num_classes set) but the split has no labels")
    if tuple(split.x.shape[1:]) != spec.event_shape:
        raise ValueError(f"split examples have shape {split.x.shape[1:]}, spec says {spec.event_shape}")
    tensors = (split.x, split.y) if spec.conditional else split.x
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


# === Built-in datasets ===

@register_dataset(
    "digits", validation_fraction=("float", 0.15), test_fraction=("float", 0.15), conditional=("bool", False)
)
def _digits(seed, validation_fraction, test_fraction, conditional):
    from sklearn.datasets import load_digits

    digits = load_digits()
    return make_dataset(
        digits.images[..., None], digits.target, {"kind": "image", "levels": 17},
        source="digits", seed=seed, validation_fraction=validation_fraction,
        test_fraction=test_fraction, conditional=conditional,
    )


@register_dataset("photo_patches", patch_size=("int", 8), num_patches=("int", 20000))
def _photo_patches(patch_size, num_patches, seed, validation_fraction, test_fraction):
    from sklearn.datasets import load_sample_images

    images = np.stack(load_sample_images().images)  # [2, 427, 640, 3] uint8
    if not 1 <= patch_size <= min(images.shape[1:3]) // 4:
        raise ValueError(f"photo_patches: patch_size must be in [1, {min(images.shape[1:3]) // 4}], got {patch_size}")
    block = 4 * patch_size
    rows, cols = images.shape[1] // block, images.shape[2] // block
    if num_patches < 1:
        raise ValueError(f"photo_patches: num_patches must be >= 1, got {num_patches}")
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


def _eight_gaussians(rng, n, noise):
    angles = rng.integers(8, size=n) * (2 * math.pi / 8)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1) + noise * rng.standard_normal((n, 2))


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
    "eight_gaussians": (_eight_gaussians, 0.1, (0.0, 0.0), (0.707, 0.707)),
    "checkerboard": (_checkerboard, 0.0, (0.0, 0.0), (2.309, 2.309)),
}
TOY_RANGE = 3.0


def _register_toy(name, generate, default_noise, centre, scale):
    @register_dataset(name, num_samples=("int", 20000), noise=("float", default_noise))
    def build(num_samples, noise, seed, validation_fraction, test_fraction):
        if num_samples < 1 or noise < 0:
            raise ValueError(f"{name}: num_samples must be >= 1 and noise >= 0, got {num_samples}, {noise}")
        x = (generate(np.random.default_rng(seed), num_samples, noise) - np.asarray(centre)) / np.asarray(scale)
        return make_dataset(
            x, None, {"kind": "vector", "low": -TOY_RANGE, "high": TOY_RANGE}, source=name, seed=seed,
            validation_fraction=validation_fraction, test_fraction=test_fraction,
        )


for _name, _toy in _TOYS.items():
    _register_toy(_name, *_toy)

from tfgen.data import loaders  # noqa: E402,F401  (registers the user-data loaders)
