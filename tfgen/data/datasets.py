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

Built-in datasets are in `tfgen.data.builtin`; user data loaders (`npy`, `npz`,
`image_folder`, `tfrecord`) in `tfgen.data.loaders`. Both register themselves here when
`tfgen.data` is imported (which importing this module does first).
"""

import dataclasses
import os
from typing import Dict, Optional, Tuple

import numpy as np

from tfgen.data.spec import KINDS, DataSpec
from tfgen.errors import UserError

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
        raise UserError(
            f"dataset {name!r}: unknown option {unknown[0]!r}; known options: {sorted(schema)}"
        )
    options = {}
    for key, (type_name, default) in schema.items():
        value = config.get(key, default)
        if value is REQUIRED:
            raise UserError(f"dataset {name!r}: option {key!r} ({type_name}) is required")
        if value is not None and not _TYPES[type_name](value):
            raise UserError(
                f"dataset {name!r}: option {key!r} must be {type_name}, got {type(value).__name__} {value!r}"
            )
        options[key] = value
    if "kind" in options and options["kind"] is not None and options["kind"] not in KINDS:
        raise UserError(f"dataset {name!r}: option 'kind' must be one of {KINDS}, got {options['kind']!r}")
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
        raise UserError(f"dataset config must be a dict with a 'name', got {config!r}")
    config = dict(config)
    name = config.pop("name")
    if name not in _DATASETS:
        raise UserError(f"unknown dataset {name!r}; known: {dataset_names()}")
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
        raise UserError(f"{source}: data must be numeric, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise UserError(f"{source}: no examples (data shape {x.shape}; expected [N, *event_shape] with N > 0)")
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        raise UserError(
            f"{source}: examples have shape {tuple(x.shape[1:])}, expected event_shape {tuple(event_shape)}"
        )
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        raise UserError(f"{source}: {int(bad.sum())} NaN/Inf value(s), first at x{_first_index(bad)}")
    if levels is not None:
        bad = (x < 0) | (x > levels - 1)
        if bad.any():
            raise UserError(
                f"{source}: {int(bad.sum())} value(s) outside [0, {levels - 1}] (levels={levels}), "
                f"first at x{_first_index(bad)} = {x[np.unravel_index(np.argmax(bad), bad.shape)]}"
            )
        bad = x != np.floor(x)
        if bad.any():
            raise UserError(
                f"{source}: {int(bad.sum())} non-integer value(s) in discrete data, first at x{_first_index(bad)}"
            )
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.floor(y))):
            raise UserError(f"{source}: labels must be integers, got dtype {y.dtype}")
        if y.shape != (x.shape[0],):
            raise UserError(f"{source}: labels have shape {y.shape}, expected ({x.shape[0]},)")
        if np.any(y < 0):
            raise UserError(f"{source}: labels must be >= 0, first negative at y[{int(np.argmax(y < 0))}]")
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
            raise UserError(f"{name}_fraction must be in [0, 1), got {fraction}")
    if validation_fraction + test_fraction >= 1.0:
        raise UserError(
            f"validation_fraction + test_fraction must be < 1, got {validation_fraction} + {test_fraction}"
        )
    if stratify is not None and groups is not None:
        raise UserError("split_indices: pass stratify or groups, not both")
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
                raise UserError(
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
            raise UserError(f"{source}: conditional=True needs labels, and this data has none")
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

    ds = tf.data.Dataset.from_tensor_slices(_split_tensors(split, spec))
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _split_tensors(split, spec):
    """`x`, or `(x, y)` for a conditional spec, checked against the spec."""
    if spec.conditional and split.y is None:
        raise UserError("spec is conditional (num_classes set) but the split has no labels")
    if tuple(split.x.shape[1:]) != spec.event_shape:
        raise UserError(f"split examples have shape {split.x.shape[1:]}, spec says {spec.event_shape}")
    return (split.x, split.y) if spec.conditional else split.x


def training_batches(split, spec, batch_size, seed, start_step=0):
    """The endless stream of full training batches, a function of `seed` alone.

    Pass p over the split is the permutation `stateless_shuffle(range(N), (seed, p))`;
    the passes are concatenated and cut into batches of `batch_size` (a batch may span
    two passes). So batch k is the same in every process, and a run resumed at global
    step k (`start_step`) reads exactly the batches the uninterrupted run read from its
    step k on, mid-epoch too. (`to_tf_dataset(shuffle=True)` reshuffles from its seed
    each time it is built, so a resumed run would replay the first pass's order.)

    Yields what `to_tf_dataset` yields: `x`, or `(x, y)` for a conditional spec.
    """
    from tfgen.backend import tf

    tensors = _split_tensors(split, spec)
    n = len(split.x)
    first_pass, offset = divmod(start_step * batch_size, n)

    def permutation(index):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), index]))
        return tf.data.Dataset.from_tensor_slices(order)

    rows = tf.data.Dataset.range(first_pass, np.iinfo(np.int64).max).flat_map(permutation).skip(offset)
    constants = tf.nest.map_structure(tf.constant, tensors)
    batches = rows.batch(batch_size, drop_remainder=True).map(
        lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), constants))
    return batches.prefetch(tf.data.AUTOTUNE)
