"""Loaders for the user's own data, returning the same `Dataset` as the built-in ones.

Options shared by every loader (defaults in brackets):

- `path` (required): the file or folder;
- `seed` [0], `validation_fraction` [0.1], `test_fraction` [0.1]: the split, stratified
  by label when there are labels;
- `conditional` [false]: declare the labels as classes (`spec.num_classes`); labels are
  kept in `Split.y` either way.

`npy`, `npz` and `tfrecord` also take `levels` [None: continuous; an int: values must be
integers in `[0, levels-1]`] and `kind` [None: "image" for rank-3 examples, else
"vector"]; `npy`/`npz` take an optional `event_shape` to check, `tfrecord` needs one.

- `npy`: one array `[N, *event_shape]`, no labels.
- `npz`: key `x` `[N, *event_shape]` and optional key `y` `[N]` integer labels.
- `image_folder`: PNG/JPEG files, either all at the top level (no labels) or one
  subfolder per class (labels are the sorted subfolder names' positions). Options
  `image_size` [None: every image must have the same size; int or [height, width]:
  resized] and `channels` [3; 1 for greyscale]. 256 levels, kind "image".
- `tfrecord`: `tf.train.Example` records holding the flattened example under
  `feature_key` ["x"] as a float_list or int64_list, reshaped to `event_shape`; optional
  int64 label under `label_key` [None].

Every problem is a one-line `FileNotFoundError` or `ValueError` naming the file; the
dataset is only built once everything has been read and checked.
"""

import math
import os
import pathlib

import numpy as np

from tfgen.data.datasets import REQUIRED, make_dataset, register_dataset
from tfgen.errors import MissingPath, UserError

_COMMON = {"path": ("path", REQUIRED), "conditional": ("bool", False)}
_ARRAY = {**_COMMON, "levels": ("int", None), "kind": ("str", None)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _existing(path, want_dir=False):
    """`path` as a `pathlib.Path`, or a FileNotFoundError naming it."""
    path = pathlib.Path(os.fspath(path)).expanduser()
    if not (path.is_dir() if want_dir else path.is_file()):
        raise MissingPath(f"{path}: no such {'folder' if want_dir else 'file'}")
    return path


def _finish(x, y, path, options, event_shape=None, spec_fields=None, class_names=None):
    """Builds the dataset like every other one; kind defaults to "image" for rank-3 examples."""
    if spec_fields is None:
        kind = options["kind"] or ("image" if np.ndim(x) == 4 else "vector")
        spec_fields = {"kind": kind, "levels": options["levels"]}
    return make_dataset(
        x, y, spec_fields, source=str(path), seed=options["seed"],
        validation_fraction=options["validation_fraction"], test_fraction=options["test_fraction"],
        conditional=options["conditional"], class_names=class_names, event_shape=event_shape,
    )


def _load_numpy(path, suffix):
    path = _existing(path)
    try:
        return path, np.load(path, allow_pickle=False)
    except ValueError as e:
        if "Object arrays" in str(e):
            raise UserError(f"{path}: holds object arrays (e.g. strings); expected a numeric array") from None
        raise UserError(f"{path}: not a readable {suffix} file ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: not a readable {suffix} file ({e})") from None


@register_dataset("npy", event_shape=("list of ints", None), **_ARRAY)
def _npy(path, event_shape, **options):
    path, x = _load_numpy(path, ".npy")
    if not isinstance(x, np.ndarray):
        raise UserError(f"{path}: is an .npz archive; use the 'npz' loader")
    return _finish(x, None, path, options, event_shape)


@register_dataset("npz", event_shape=("list of ints", None), **_ARRAY)
def _npz(path, event_shape, **options):
    path, archive = _load_numpy(path, ".npz")
    if isinstance(archive, np.ndarray):
        raise UserError(f"{path}: is a single .npy array, not an .npz archive; use the 'npy' loader")
    with archive:
        if "x" not in archive.files:
            raise UserError(f"{path}: no array 'x' in the archive (keys: {archive.files})")
        try:
            x = archive["x"]
            y = archive["y"] if "y" in archive.files else None
        except ValueError:
            raise UserError(f"{path}: holds object arrays (e.g. strings); expected numeric arrays") from None
    return _finish(x, y, path, options, event_shape)


def _read_image(file, channels, size):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if size is not None:
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"{file}: not a readable image ({e})") from None
    return array.reshape(array.shape[:2] + (channels,))


@register_dataset(
    "image_folder", image_size=("int or list of 2 ints", None), channels=("int", 3), **_COMMON
)
def _image_folder(path, image_size, channels, **options):
    folder = _existing(path, want_dir=True)
    if channels not in (1, 3):
        raise UserError(f"{folder}: option 'channels' must be 1 or 3, got {channels}")
    size = None if image_size is None else tuple(np.broadcast_to(image_size, 2).tolist())

    def images_in(directory):
        return sorted(f for f in directory.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)

    top = images_in(folder)
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and images_in(d))
    if top and class_dirs:
        raise UserError(
            f"{folder}: has images both at the top level and in subfolders ({class_dirs[0].name}/); "
            f"use one layout: all images at the top, or one subfolder per class"
        )
    files = top or [f for d in class_dirs for f in images_in(d)]
    if not files:
        raise UserError(f"{folder}: no PNG/JPEG images (looked for {', '.join(IMAGE_SUFFIXES)})")
    labels = None if top else [i for i, d in enumerate(class_dirs) for _ in images_in(d)]
    images = []
    for file in files:
        image = _read_image(file, channels, size)
        if images and image.shape != images[0].shape:
            raise UserError(
                f"{file}: image is {image.shape[1]}x{image.shape[0]}, but {files[0].name} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; set option image_size to resize"
            )
        images.append(image)
    class_names = None if top else [d.name for d in class_dirs]
    return _finish(
        np.stack(images), labels, folder, options, spec_fields={"kind": "image", "levels": 256},
        class_names=class_names,
    )


def _feature_values(example, key, path, index):
    """The values of feature `key` of one tf.train.Example, as a numpy array."""
    feature = example.features.feature
    if key not in feature:
        raise UserError(f"{path}: record {index} has no feature {key!r} (features: {sorted(feature)})")
    kind = feature[key].WhichOneof("kind")
    if kind == "bytes_list":
        raise UserError(f"{path}: record {index} feature {key!r} is a bytes_list; expected float_list or int64_list")
    values = getattr(feature[key], kind).value if kind else []
    return np.asarray(values, dtype=np.float64 if kind == "float_list" else np.int64)


@register_dataset(
    "tfrecord", event_shape=("list of ints", REQUIRED), feature_key=("str", "x"), label_key=("str", None),
    **_ARRAY,
)
def _tfrecord(path, event_shape, feature_key, label_key, **options):
    from tfgen.backend import tf

    path = _existing(path)
    size = math.prod(event_shape)
    xs, ys = [], []
    try:
        for index, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
            try:
                example = tf.train.Example.FromString(record)
            except Exception as e:  # protobuf's DecodeError
                raise UserError(f"{path}: record {index} is not a tf.train.Example ({e})") from None
            values = _feature_values(example, feature_key, path, index)
            if values.size != size:
                raise UserError(
                    f"{path}: record {index} feature {feature_key!r} has {values.size} values; "
                    f"event_shape {tuple(event_shape)} needs {size}"
                )
            xs.append(values.reshape(event_shape))
            if label_key is not None:
                label = _feature_values(example, label_key, path, index)
                if label.size != 1:
                    raise UserError(f"{path}: record {index} label {label_key!r} has {label.size} values, expected 1")
                ys.append(label[0])
    except tf.errors.OpError as e:
        raise UserError(f"{path}: not a readable TFRecord file ({e.message.splitlines()[0]})") from None
    if not xs:
        raise UserError(f"{path}: no records")
    return _finish(np.stack(xs), np.asarray(ys) if label_key else None, path, options, event_shape)
